"""Problem files: the robocode set is well formed, in sync with its source, and every canonical
solution passes its own tests in OUR sandbox while a wrong solution fails them."""

from __future__ import annotations

import gzip
import json

import pytest

from capstan.bench.codegen import SOLUTION_MODULES
from capstan.bench.problems import ProblemFileError, program, read_problems, robocode_path


@pytest.fixture(scope="module")
def sandbox():
    from capstan.sandbox import Sandbox

    sb = Sandbox(pool_size=1, extra_modules=SOLUTION_MODULES)
    yield sb
    sb.close()


ROBOCODE = read_problems(robocode_path())


def test_robocode_has_enough_unique_problems():
    assert len(ROBOCODE) >= 30
    assert len({p["entry_point"] for p in ROBOCODE}) == len(ROBOCODE)
    for p in ROBOCODE:
        assert f"def {p['entry_point']}(" in p["prompt"] and "def check(candidate)" in p["test"]


def test_robocode_jsonl_matches_its_source():
    from benchmarks.robocode_source import render_jsonl

    assert robocode_path().read_text() == render_jsonl(), "run: python -m benchmarks.robocode_source"


def test_canonical_solutions_pass_in_the_sandbox(sandbox):
    """One sandbox run for all problems (each checked in turn, failures collected by task id)."""
    parts = ["failed = []"]
    for p in ROBOCODE:
        parts.append(p["prompt"] + p["canonical_solution"])
        parts.append(p["test"])
        parts.append(
            f"try:\n    check({p['entry_point']})\nexcept Exception:\n    failed.append({p['task_id']!r})"
        )
    res = sandbox.run("\n\n".join(parts), host_functions={}, timeout_s=30, return_names=("failed",))
    assert res.ok, res.error
    assert res.values["failed"] == []


def test_a_wrong_solution_fails_its_tests_in_the_sandbox(sandbox):
    for p in ROBOCODE[::8]:
        res = sandbox.run(
            program(p, p["prompt"] + "    return None\n"), host_functions={}, timeout_s=10, return_names=()
        )
        assert not res.ok and res.error.kind == "policy", (p["task_id"], res.error)


NEAR_MISSES = {  # an off-by-one / sign / axis mistake in each: the tests must catch it
    "heading_deg": "    return math.degrees(math.atan2(q[1] - p[1], q[0] - p[0]))\n",
    "rotate_point": "    a = math.radians(-angle_deg)\n    dx, dy = point[0] - center[0], point[1] - "
    "center[1]\n"
    "    return [center[0] + dx * math.cos(a) - dy * math.sin(a), center[1] + dx * math.sin(a) + dy * "
    "math.cos(a)]\n",
    "is_left_of": "    return a[0] <= b[0] - margin\n",
    "grid_layout": "    return [[center[0] + (c - (cols - 1) / 2) * spacing, center[1] + (r - (rows - 1) / "
    "2) * spacing]"
    " for r in range(rows) for c in range(cols)]\n",
    "boxes_overlap": "    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]\n",
    "spread_evenly": "    return [[x_min + i * (x_max - x_min) / (n - 1), y] for i in range(n)]\n",
}


def test_near_miss_solutions_fail(sandbox):
    by_name = {p["entry_point"]: p for p in ROBOCODE}
    for name, body in NEAR_MISSES.items():
        p = by_name[name]
        res = sandbox.run(program(p, p["prompt"] + body), host_functions={}, timeout_s=10, return_names=())
        assert not res.ok, name


def test_humaneval_problems_load_from_the_installed_package():
    from capstan.bench.problems import humaneval_path

    problems = read_problems(humaneval_path())
    assert len(problems) == 164 and problems[0]["task_id"] == "HumanEval/0"


def test_bad_problem_files_name_the_line_and_the_fix(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(ProblemFileError, match=r"line 1: missing, or not text: entry_point, test"):
        read_problems(f)
    f.write_text("not json\n")
    with pytest.raises(ProblemFileError, match="line 1: not JSON"):
        read_problems(f)
    with pytest.raises(ProblemFileError, match="no such problem file"):
        read_problems(tmp_path / "missing.jsonl")


ADD = {
    "task_id": "T/0",
    "prompt": 'def add(a, b):\n    """Add\u2028two numbers."""\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
}


def test_problem_files_are_read_as_json_lines_in_utf8_gzip_or_not(tmp_path):
    """Lines end at newlines only (JSON text may hold U+2028, which str.splitlines() also breaks
    at), with CRLF and a UTF-8 byte-order mark allowed; gzip is known by its bytes, not its name."""
    line = json.dumps(ADD, ensure_ascii=False)
    f = tmp_path / "p.JSONL.GZ"
    f.write_bytes(gzip.compress(("\ufeff" + line + "\r\n").encode("utf-8")))
    assert read_problems(f) == [ADD]
    f = tmp_path / "p.jsonl"
    f.write_bytes(("\ufeff" + line + "\r\n\r\n").encode("utf-8"))
    assert read_problems(f) == [ADD]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("\xe9t\xe9".encode("latin-1"), "not UTF-8 text"),
        (b"\x1f\x8bnot really gzip", "a damaged gzip file"),
        (b"42\n", "line 1: not a JSON object"),
        (json.dumps({**ADD, "task_id": 5}).encode(), "missing, or not text: task_id"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: JSON nested too deep to read"),
    ],
)
def test_unreadable_problem_files_say_why(tmp_path, content, says):
    f = tmp_path / "p.jsonl"
    f.write_bytes(content)
    with pytest.raises(ProblemFileError, match=says):
        read_problems(f)
    with pytest.raises(ProblemFileError, match="cannot read it"):
        read_problems(tmp_path)  # a directory


def test_a_problem_file_is_read_no_further_than_a_problem_file_goes(tmp_path, monkeypatch):
    import capstan.bench.problems as problems

    monkeypatch.setattr(problems, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ProblemFileError, match="more than 0 MB of problems"):
        read_problems("/dev/zero")
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * 100_000))
    with pytest.raises(ProblemFileError, match="more than 0 MB"):
        read_problems(bomb)
