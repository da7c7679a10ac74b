"""Quick end-to-end check of everyday commands: real LLM (llm.from_config), real sim, real sandbox.

    .venv/bin/python scripts/devcheck.py            # all cases
    .venv/bin/python scripts/devcheck.py -k stack   # cases whose name contains "stack"

Each case builds a scene, runs one or more commands in one conversation, and checks the world or
what was said afterwards with a simple test. Prints pass/fail per case and the success rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _xy(state: dict, name: str) -> np.ndarray:
    return np.asarray(state["objects"][name]["position"][:2])


def _z(state: dict, name: str) -> float:
    return float(state["objects"][name]["position"][2])


def _near(state: dict, a: str, target, tol: float = 0.05) -> bool:
    t = _xy(state, target) if isinstance(target, str) else np.asarray(target)
    return bool(np.linalg.norm(_xy(state, a) - t) < tol)


def _unmoved(before: dict, after: dict) -> bool:
    return all(np.linalg.norm(_xy(before, n) - _xy(after, n)) < 0.01 for n in before["objects"])


def _blocks(state: dict) -> list[str]:
    return [n for n in state["objects"] if n.endswith("block")]


Check = Callable[[dict, dict, list[str]], bool]  # (state before, state after, said) -> ok


@dataclass
class Case:
    name: str
    objects: list[str]
    commands: list[str]
    check: Check
    seed: int = 11


def _rightmost_to_corner(b, a, s):
    block = max(_blocks(b), key=lambda n: _xy(b, n)[0])
    return _near(a, block, a["named_positions"]["bottom right corner"], 0.06)


def _nearest_in_bowl(b, a, s):
    block = min(_blocks(b), key=lambda n: np.linalg.norm(_xy(b, n) - _xy(b, "red bowl")))
    return _near(a, block, "red bowl")


def _row_bottom(b, a, s):
    ys = [_xy(a, n)[1] for n in _blocks(a)]
    xs = sorted(_xy(a, n)[0] for n in _blocks(a))
    return float(np.std(ys)) < 0.02 and float(np.mean(ys)) < 0.45 and min(np.diff(xs)) > 0.04


def _topmost_down(b, a, s):
    n = max(_blocks(b), key=lambda n: _xy(b, n)[1])
    return abs(_xy(b, n)[1] - _xy(a, n)[1] - 0.05) < 0.02


def _circle_around(b, a, s):
    c = _xy(a, "pink bowl")
    d = [np.linalg.norm(_xy(a, n) - c) for n in _blocks(a)]
    return all(0.05 < x < 0.18 for x in d) and not _unmoved(b, a)


CASES = [
    Case(
        "place",
        ["yellow block", "purple block", "blue bowl", "gray bowl"],
        ["place the yellow block inside the blue bowl"],
        lambda b, a, s: _near(a, "yellow block", "blue bowl"),
    ),
    Case(
        "stack-two",
        ["red block", "cyan block", "white bowl"],
        ["stack the red block on top of the cyan block"],
        lambda b, a, s: (
            _near(a, "red block", "cyan block", 0.03) and _z(a, "red block") > _z(a, "cyan block") + 0.02
        ),
    ),
    Case(
        "matching",
        ["orange block", "purple block", "cyan block", "cyan bowl", "orange bowl", "purple bowl"],
        ["put every block into the bowl that has its color"],
        lambda b, a, s: all(_near(a, f"{c} block", f"{c} bowl") for c in ("orange", "purple", "cyan")),
    ),
    Case(
        "rightmost",
        ["green block", "white block", "brown block", "red bowl"],
        ["move the rightmost block to the bottom right corner"],
        _rightmost_to_corner,
    ),
    Case(
        "count-q",
        ["green block", "white block", "red bowl", "blue bowl", "yellow bowl"],
        ["how many bowls are on the table?"],
        lambda b, a, s: _unmoved(b, a) and any("3" in x or "three" in x.lower() for x in s),
    ),
    Case(
        "absent",
        ["red block", "blue block", "green bowl"],
        ["put the orange block in the green bowl"],
        lambda b, a, s: _unmoved(b, a) and len(s) > 0,
    ),
    Case(
        "shift",
        ["green block", "pink block", "gray bowl"],
        ["shift the pink block 10 centimeters to the left"],
        lambda b, a, s: abs(_xy(a, "pink block")[0] - _xy(b, "pink block")[0] + 0.10) < 0.03,
    ),
    Case(
        "row",
        ["red block", "yellow block", "blue block", "green bowl"],
        ["arrange all the blocks in a row along the bottom of the table"],
        _row_bottom,
    ),
    Case(
        "circle",
        ["gray block", "orange block", "white block", "cyan block", "pink bowl"],
        ["place the blocks in a circle around the pink bowl"],
        _circle_around,
    ),
    Case(
        "nearest",
        ["blue block", "yellow block", "brown block", "red bowl"],
        ["put the block nearest to the red bowl into the red bowl"],
        _nearest_in_bowl,
    ),
    Case(
        "multi-turn",
        ["blue block", "yellow block", "green bowl"],
        ["pick up the blue block and put it on the yellow block", "now move it to the top left corner"],
        lambda b, a, s: _near(a, "blue block", a["named_positions"]["top left corner"], 0.06),
    ),
    Case(
        "undo",
        ["purple block", "red block", "white bowl"],
        ["put the purple block in the white bowl", "undo that"],
        lambda b, a, s: _unmoved(b, a),
    ),
    Case(
        "all-in-bowl",
        ["pink block", "brown block", "gray block", "white bowl"],
        ["put all the blocks in the white bowl"],
        lambda b, a, s: all(_near(a, n, "white bowl", 0.06) for n in _blocks(a)),
    ),
    Case(
        "left-of",
        ["cyan block", "orange block", "yellow bowl"],
        ["put the cyan block left of the yellow bowl"],
        lambda b, a, s: (
            -0.16 < _xy(a, "cyan block")[0] - _xy(a, "yellow bowl")[0] < -0.04
            and abs(_xy(a, "cyan block")[1] - _xy(a, "yellow bowl")[1]) < 0.05
        ),
    ),
    Case(
        "which-q",
        ["red block", "green block", "blue block", "white bowl"],
        ["which block is the leftmost one?"],
        lambda b, a, s: (
            _unmoved(b, a) and any(min(_blocks(b), key=lambda n: _xy(b, n)[0]).split()[0] in x for x in s)
        ),
    ),
    Case(
        "exists-q",
        ["red block", "green block", "white bowl"],
        ["is there a purple bowl on the table?"],
        lambda b, a, s: (
            _unmoved(b, a) and any(x.lower().startswith("no") or "no purple" in x.lower() for x in s)
        ),
    ),
    Case(
        "two-named",
        ["red block", "blue block", "gray block", "gray bowl"],
        ["put the red and the blue blocks in the gray bowl"],
        lambda b, a, s: (
            _near(a, "red block", "gray bowl", 0.06)
            and _near(a, "blue block", "gray bowl", 0.06)
            and _near(a, "gray block", _xy(b, "gray block"), 0.01)
        ),
    ),
    Case(
        "down",
        ["yellow block", "white block", "cyan bowl"],
        ["move the top-most block 5 cm down"],
        _topmost_down,
    ),
    Case(
        "tower",
        ["brown block", "pink block", "orange block", "gray bowl"],
        ["build a tower out of all the blocks"],
        lambda b, a, s: (
            max(np.linalg.norm(_xy(a, m) - _xy(a, n)) for m in _blocks(a) for n in _blocks(a)) < 0.03
            and max(_z(a, n) for n in _blocks(a)) > 0.09
        ),
    ),
]


def run_case(engine, case: Case, verbose: bool) -> tuple[bool, float, list]:
    from capstan.lmp.conversation import Conversation
    from capstan.primitives.api import PolicyAPI
    from capstan.sim import World

    world = World({"objects": case.objects, "seed": case.seed})
    try:
        api = PolicyAPI(world)
        before = world.state()
        conv = Conversation()
        outcomes = []
        t0 = time.monotonic()
        for cmd in case.commands:
            outcomes.append(engine.run_command(cmd, api, conv))
        after = world.state()
        ok = all(o.status == "succeeded" for o in outcomes) and case.check(before, after, list(api.said))
        if verbose or not ok:
            for cmd, o in zip(case.commands, outcomes, strict=False):
                print(
                    f"  > {cmd}  [{o.status}, {len(o.attempts)} attempt(s), {len(o.llm_calls)} llm call(s)]"
                )
                ui_calls = [c for c in o.llm_calls if c["lmp"] == "tabletop_ui"]
                for a, call in zip(o.attempts, ui_calls, strict=False):
                    print(
                        f"    attempt {a['attempt']} answer: "
                        + call["completion"].strip().replace("\n", "\n      ")
                    )
                    if a["error"]:
                        print(f"      error: {a['error']}")
                print("    final: " + o.code.strip().replace("\n", "\n    "))
            print(f"  said: {api.said}")
        return ok, time.monotonic() - t0, outcomes
    finally:
        world.close()


def main(argv: list[str] | None = None, sandbox=None, llm=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the code of passing cases too")
    parser.add_argument("--attempts", type=int, default=3, help="max attempts per command (default 3)")
    args = parser.parse_args(argv)
    from capstan import llm as llm_pkg
    from capstan.lmp.engine import Engine

    if sandbox is None:
        from capstan.sandbox import Sandbox

        sandbox = Sandbox(pool_size=1)
    llm = llm or llm_pkg.from_config()
    engine = Engine(llm, sandbox, max_attempts=args.attempts)
    cases = [c for c in CASES if args.k in c.name]
    passed = 0
    for case in cases:
        ok, secs, outcomes = run_case(engine, case, args.verbose)
        passed += ok
        calls = sum(len(o.llm_calls) for o in outcomes)
        print(f"{'PASS' if ok else 'FAIL'} {case.name:12s} {secs:6.1f}s  llm_calls={calls}", flush=True)
    print(f"{passed}/{len(cases)} passed ({100 * passed / max(1, len(cases)):.0f}%)")
    return 0 if passed == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
