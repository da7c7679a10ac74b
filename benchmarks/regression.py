"""The CI regression subset: a few robocode problems and tabletop tasks replayed from cassettes
recorded with the real local model, compared against the checked-in expected outcomes.

    python -m benchmarks.regression record   # run the subset live, recording benchmarks/cassettes/*.jsonl
                                        # (resumable), then write benchmarks/results/regression_expected.json
    python -m benchmarks.regression check    # replay offline and compare (what tests/bench runs)
    python -m benchmarks.regression expect   # replay and rewrite the expected outcomes

Replay is deterministic: the same code comes back for the same prompt, and the sandbox and the
simulator are deterministic, so an item that passed at recording time and fails now is a
regression in our code (prompt rendering, extraction, sandbox, primitives, sim, checkers).
A cassette miss means a prompt or request changed: re-record.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CASSETTES = ROOT / "cassettes"
EXPECTED = ROOT / "results" / "regression_expected.json"

SUBSETS: dict[str, list[str]] = {
    "robocode": ["--limit", "5"],
    "tasks": [
        "--split",
        "seen",
        "--families",
        "pick_place,stacking,sorting,corners_sides,superlative,multi_turn,question,refusal",
        "--seeds",
        "1",
        "--attempts",
        "2",
    ],
}


def suite_args(suite: str, mode: str, out: Path) -> argparse.Namespace:
    from capstan.bench import suite as suite_module

    parser = argparse.ArgumentParser()
    suite_module(suite).build_parser(parser)
    argv = [*SUBSETS[suite], "--workers", "1", "--no-progress", "--out", str(out / suite)]
    argv += ["--cassette", str(CASSETTES / f"{suite}.jsonl"), "--cassette-mode", mode]
    return parser.parse_args(argv)


def run_subset(suite: str, mode: str, out: Path) -> dict:
    from capstan.bench import suite as suite_module

    code = suite_module(suite).run(suite_args(suite, mode, out))
    if code != 0:
        raise RuntimeError(f"capstan bench {suite} exited with {code}")
    return json.loads((out / suite / f"{suite}.json").read_text())


MISS = "CassetteMissError"


def outcomes(summary: dict) -> dict[str, bool | str]:
    """Item id -> passed, or "miss" when the cassette had no recording for one of its requests."""
    out: dict[str, bool | str] = {}
    for r in summary["items"]:
        out[r["id"]] = "miss" if MISS in json.dumps(r) else bool(r.get("passed", r.get("success", False)))
    return out


def recorded_model(suite: str) -> str:
    with open(CASSETTES / f"{suite}.jsonl", encoding="utf-8") as f:
        return json.loads(f.readline())["model"]


def replay_env(suite: str) -> dict[str, str]:
    """Settings under which replay finds the recordings whatever the local configuration says."""
    return {"CAPSTAN_LLM": "local", "CAPSTAN_LLM_MODEL": recorded_model(suite)}


def compare_to_expected(suite: str, got: dict, expected: dict) -> list[str]:
    """Human-readable problems: regressions, missing items, cassette misses (empty when fine)."""
    problems = []
    for item, was in expected.items():
        if item not in got:
            problems.append(f"{suite} {item}: did not run")
        elif got[item] == "miss":
            problems.append(
                f"{suite} {item}: no recording for one of its LLM requests (a prompt or request changed); "
                "re-record with: python -m benchmarks.regression record"
            )
        elif was is True and got[item] is not True:
            problems.append(f"{suite} {item}: passed when recorded, fails now (regression)")
    return problems


def replay_all(out: Path) -> dict[str, dict]:
    got = {}
    saved = {k: os.environ.get(k) for k in ("CAPSTAN_LLM", "CAPSTAN_LLM_MODEL")}
    try:
        for suite in SUBSETS:
            os.environ.update(replay_env(suite))
            got[suite] = outcomes(run_subset(suite, "replay", out))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("record", "check", "expect"))
    parser.add_argument("--out", type=Path, default=Path("var/bench/regression"))
    args = parser.parse_args(argv)
    if args.action == "record":
        shutil.rmtree(args.out / "record", ignore_errors=True)  # stale results would skip the live calls
        for suite in SUBSETS:
            run_subset(suite, "record", args.out / "record")
    got = replay_all(args.out / "replay")
    if args.action in ("record", "expect"):
        EXPECTED.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        print(f"wrote {EXPECTED}")
        return 0
    expected = json.loads(EXPECTED.read_text())
    problems = [p for suite in SUBSETS for p in compare_to_expected(suite, got[suite], expected[suite])]
    print("\n".join(problems) or "no regressions", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
