"""`capstan bench robocode` end to end, offline: a cassette recorded from a scripted model is
replayed through the real CLI path (options -> harness -> worker -> llm.from_config ->
lmp.FunctionGenerator -> sandbox), here with an outside problem file via --problems."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from capstan.bench import robocode
from capstan.bench.problems import read_problems, robocode_path

PROBLEMS = [
    p for p in read_problems(robocode_path()) if p["entry_point"] in ("midpoint", "is_left_of", "centroid")
]
WRONG = {
    "midpoint": "    return [p[0], q[1]]\n",
    "is_left_of": "    return a[0] > b[0]\n",
    "centroid": "    return [0, 0]\n",
}


def record_cassette(path, answers: dict[str, str]) -> None:
    """Record what FunctionGenerator asks for each problem, answered with `answers[entry_point]`."""
    from capstan.llm.cassette import CassetteProvider
    from capstan.llm.scripted import ScriptedProvider
    from capstan.lmp import FunctionGenerator
    from capstan.lmp.spec_examples import example_check
    from capstan.sandbox import Sandbox

    with Sandbox(pool_size=1) as sandbox:
        for p in PROBLEMS:
            body = answers[p["entry_point"]]
            fn = "```python\n" + p["prompt"] + body + "```"
            check = example_check(sandbox, p["prompt"], p["entry_point"])
            for hierarchical in (False, True):  # a wrong answer is revised, differently in each mode
                # answer, rewrite, and in hierarchical mode a plan that is asked again when inline
                cassette = CassetteProvider(
                    path, "record", inner=ScriptedProvider([fn] * 4, model="scripted")
                )
                FunctionGenerator(cassette).generate(
                    p["prompt"], p["entry_point"], hierarchical=hierarchical, check=check
                )
            cassette = CassetteProvider(path, "record", inner=ScriptedProvider([fn], model="scripted"))
            cassette.complete(FunctionGenerator(cassette).spec_request(p["prompt"]))


def run_cli(tmp_path, cassette, *extra: str, returns: int = 0) -> dict:
    problems = tmp_path / "outside.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    parser = argparse.ArgumentParser()
    robocode.build_parser(parser)
    args = parser.parse_args(
        [
            "--problems",
            str(problems),
            "--cassette",
            str(cassette),
            "--cassette-mode",
            "replay",
            "--json",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
            *extra,
        ]
    )
    assert robocode.run(args) == returns
    return json.loads((tmp_path / "out" / "robocode.json").read_text())


@pytest.fixture(autouse=True)
def scripted_model_name(monkeypatch):
    monkeypatch.setenv("CAPSTAN_LLM_MODEL", "scripted")  # the model the cassette was recorded with


def test_replayed_right_answers_pass_in_both_modes(tmp_path, capsys):
    record_cassette(tmp_path / "c.jsonl", {p["entry_point"]: p["canonical_solution"] for p in PROBLEMS})
    summary = run_cli(tmp_path, tmp_path / "c.jsonl", "--workers", "2")
    printed = json.loads(capsys.readouterr().out)
    assert printed["flat"] == summary["flat"] and "items" not in printed
    for mode in ("naive", "flat", "hierarchical"):  # all three, problem by problem
        assert summary[mode]["pass_at_1"] == 1.0 and summary[mode]["n"] == 3
        assert summary[mode]["helpers_generated"] == 0 and summary[mode]["nested_calls"] == 0
    assert summary["only_passing_in"] == {"naive": [], "flat": [], "hierarchical": []}
    assert [r["id"].split(":")[0] for r in summary["items"][:3]] == ["naive", "flat", "hierarchical"]
    assert summary["model"] == "scripted"
    md = (tmp_path / "out" / "robocode.md").read_text()
    assert "| flat | 3 | 3 | 100.0% | 0 | 0 |" in md


def test_replayed_wrong_answers_fail_and_rerun_resumes(tmp_path):
    record_cassette(tmp_path / "c.jsonl", WRONG)
    summary = run_cli(tmp_path, tmp_path / "c.jsonl", "--workers", "1", "--mode", "flat")
    assert summary["flat"] == {
        "pass_at_1": 0.0,
        "n": 3,
        "passed": 0,
        "errors": 0,
        "timeouts": 0,
        "helpers_generated": 0,
        "problems_with_helpers": 0,
        "nested_calls": 0,
        "revised": 3,
        "llm_calls": 6,  # each failed its docstring example: revised once
    }
    assert "hierarchical" not in summary
    assert all(r["result"].startswith("failed: policy") for r in summary["items"])
    results = tmp_path / "out" / "robocode.results.jsonl"
    lines = results.read_text().splitlines()
    again = run_cli(tmp_path, tmp_path / "c.jsonl", "--workers", "1", "--mode", "flat")
    assert results.read_text().splitlines() == lines  # nothing ran twice
    assert again["flat"] == summary["flat"]


def test_a_missing_recording_is_an_error_result_not_a_crash(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    summary = run_cli(
        tmp_path, tmp_path / "empty.jsonl", "--workers", "1", "--limit", "1", "--mode", "flat", returns=1
    )  # nothing was measured: the run says so and exits 1
    row = summary["items"][0]
    assert row["status"] == "error" and "CassetteMissError" in row["error"]
    assert summary["flat"]["errors"] == 1


ORIGINAL_FORMAT = (
    Path(__file__).resolve().parents[1] / "fixtures" / "bench" / "robocode_original_format.jsonl"
)


def test_the_original_formats_reference_solutions_pass_with_their_star_imports(tmp_path, capsys):
    """Problems in the original Code-as-Policies format start with `from shapely.geometry import *`
    and `from shapely.affinity import *`; their references use Polygon, rotate, translate, ..."""
    assert "import *" in read_problems(ORIGINAL_FORMAT)[0]["prompt"]
    parser = argparse.ArgumentParser()
    robocode.build_parser(parser)
    args = parser.parse_args(
        [
            "--problems",
            str(ORIGINAL_FORMAT),
            "--canonical",
            "--json",
            "--workers",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert robocode.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["canonical"]["n"] == 5 and summary["canonical"]["pass_at_1"] == 1.0, summary


def test_problems_passing_in_only_one_mode_are_listed():
    from capstan.bench.codegen import only_passing_in

    rows = [
        {"id": "naive:a", "passed": True},
        {"id": "flat:a", "passed": True},
        {"id": "hierarchical:a", "passed": True},
        {"id": "naive:b", "passed": True},
        {"id": "flat:b", "passed": False},
        {"id": "hierarchical:b", "passed": False},
        {"id": "naive:c", "passed": False},
        {"id": "flat:c", "passed": False},
        {"id": "hierarchical:c", "passed": True},
        {"id": "naive:d", "status": "error"},
        {"id": "flat:d", "passed": True},
        {"id": "hierarchical:d", "passed": True},
    ]
    modes = ("naive", "flat", "hierarchical")
    assert only_passing_in(rows, modes) == {"naive": ["b"], "flat": [], "hierarchical": ["c"]}


GOOD = {
    "task_id": "T/0",
    "prompt": 'def add(a, b):\n    """Add."""\n',
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
}


def capstan(*argv: str) -> int:
    from capstan.service.cli import main

    return main(list(argv))


def test_a_problem_file_edited_between_runs_into_one_out_is_measured_again(tmp_path, capsys):
    """Resuming reuses results only for the same file contents: an edited file is run again."""
    problems, out = tmp_path / "p.jsonl", str(tmp_path / "out")
    problems.write_text(json.dumps({**GOOD, "canonical_solution": "    return a - b\n"}) + "\n")
    run = ("bench", "robocode", "--problems", str(problems), "--canonical", "--json", "--no-progress")
    assert capstan(*run, "--workers", "1", "--out", out) == 0
    assert json.loads(capsys.readouterr().out)["canonical"]["passed"] == 0
    problems.write_text(json.dumps(GOOD) + "\n")
    assert capstan(*run, "--workers", "1", "--out", out) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["canonical"]["passed"] == 1 and "only_passing_in" not in summary  # one mode


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such problem file"),
        ("[" + json.dumps(GOOD) + "]\n", "line 1: not a JSON object"),
        (json.dumps({**GOOD, "canonical_solution": None}) + "\n", "canonical_solution is not text"),
        (json.dumps({**GOOD, "entry_point": "add)\nimport os\n("}) + "\n", "is not a function name"),
    ],
)
def test_a_bad_problem_file_is_a_clear_message_not_a_traceback(tmp_path, capsys, content, says):
    problems = tmp_path / "p.jsonl"
    if content is not None:
        problems.write_text(content)
    assert capstan("bench", "robocode", "--problems", str(problems), "--canonical", "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("capstan: ") and says in err and "Traceback" not in err


NONSENSE = [
    ("--limit", "0"),
    ("--limit", "-1"),
    ("--timeout", "0"),
    ("--timeout", "nan"),
    ("--timeout", "1e19"),  # beyond what the OS takes as a CPU limit
    ("--workers", "0"),
]


@pytest.mark.parametrize("flags", NONSENSE)
def test_nonsense_numbers_are_refused_before_anything_runs(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as stop:
        capstan("bench", "robocode", "--canonical", "--out", str(tmp_path), *flags)
    assert stop.value.code == 2 and flags[0] in capsys.readouterr().err


def test_a_cassette_to_replay_that_does_not_exist_stops_the_run_at_once(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(SystemExit, match="no such file to replay"):
        capstan("bench", "robocode", "--cassette", str(missing), "--out", str(tmp_path), "--no-progress")


def test_a_bad_workers_variable_only_matters_to_a_bench_that_uses_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAPSTAN_BENCH_WORKERS", "abc")
    with pytest.raises(SystemExit) as stop:
        capstan("--help")
    assert stop.value.code == 0
    run = ("bench", "robocode", "--canonical", "--limit", "1", "--out", str(tmp_path), "--no-progress")
    assert capstan(*run) == 2
    assert "CAPSTAN_BENCH_WORKERS='abc'" in capsys.readouterr().err


def test_a_longer_timeout_also_lets_a_test_compute_longer():
    """The sandbox's CPU budget (10 s by default) would cut a CPU-bound test short of --timeout."""
    from capstan.bench.codegen import Context

    for timeout, budget in ((30.0, 30.0), (2.0, 10.0)):
        ctx = Context({"canonical": True, "timeout_s": timeout})
        try:
            assert ctx.sandbox.cpu_budget_s == budget
        finally:
            ctx.sandbox.close()
