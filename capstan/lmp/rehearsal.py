"""Dry runs: a candidate program rehearsed where nothing real moves, judged, and the survivors
compared.

The engine does not know where a rehearsal happens. It is handed a `Rehearsal`: on the simulator,
the live world between a snapshot and its restore with no frames rendered; for a real robot, a
simulator twin of its scene. Judging reads only scene states (docs/CONTRACTS.md "Scene state"), so
it is the same for every backend.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from capstan.lmp.nested import NESTED
from capstan.primitives.api import MOTION_NAMES, PolicyAPI
from capstan.primitives.outcome import ErrorKind, RunError
from capstan.primitives.rehearsal import Rehearsed
from capstan.primitives.scene_state import SceneState, WorkspaceBounds

MOVED_M = 0.01  # an object or the gripper that moved less than this did not move
AGREE_M = 0.02  # two final scenes agree when every object is within this of its place in the other
FELL_M = 0.02  # an object this far below the table top has fallen off it
OUTSIDE_M = 0.03  # an object this far outside the workspace box has left it


class Rehearsal(Protocol):
    def can_rehearse(self, api: PolicyAPI) -> bool: ...

    def rehearse(self, api: PolicyAPI, run: Callable[[], RunError | None]) -> Rehearsed:
        """Call `run()` (which runs a program against `api`) so that nothing real moves; the
        world is as it was afterwards."""
        ...


@dataclass
class DryRun:
    """One candidate program and how its rehearsal went."""

    index: int
    source: str  # "greedy" (the model's first answer), "sampled" or "repair"
    code: str
    seed: int | None = None
    rejected: ErrorKind | None = None  # None: it survived; else why not
    error: RunError | None = None
    moved: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    motions: int = 0
    final: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    twin: bool = False  # rehearsed on a simulated twin of the robot

    def summary(self) -> dict:
        error = None if self.error is None else self.error.to_dict()
        return {
            "index": self.index,
            "source": self.source,
            "seed": self.seed,
            "code": self.code,
            "rejected": self.rejected,
            "error": error,
            "moved": self.moved,
            "said": self.said,
            "motions": self.motions,
            "seconds": round(self.seconds, 4),
            "twin": self.twin,
        }


def judge(dry: DryRun, rehearsed: Rehearsed) -> DryRun:
    """Fill in what the rehearsal showed, and reject the candidate when it raised, dropped an object
    off the table, pushed one out of the workspace, or did nothing at all (moved nothing and said
    nothing)."""
    before, after = _objects(rehearsed.before), _objects(rehearsed.after)
    dry.final, dry.twin = after, rehearsed.twin
    dry.said = list(rehearsed.said)
    dry.motions = sum(c.get("name") in MOTION_NAMES for c in rehearsed.calls)
    # judge what the program moved, not where the scene began
    moved = {n: p for n, p in after.items() if n not in before or math.dist(before[n], p) > MOVED_M}
    dry.moved = [f"{n} moved from {_xyz(before[n])} to {_xyz(p)}" for n, p in moved.items() if n in before]
    if rehearsed.error is not None:
        dry.rejected, dry.error = rehearsed.error.kind, rehearsed.error
        return dry
    ws = rehearsed.after["workspace"]
    table_z = float(ws["table_z"])
    for name, p in moved.items():
        if p[2] < table_z - FELL_M:
            return _reject(
                dry,
                ErrorKind.OFF_TABLE,
                f"in the dry run the {name} fell off the table "
                f"(to {_xyz(p)}); keep every target on the table",
            )
        if not _inside(p, ws):
            return _reject(
                dry,
                ErrorKind.LEFT_WORKSPACE,
                f"in the dry run the {name} ended at {_xyz(p)}, "
                f"outside the workspace x in {ws['x']}, y in {ws['y']}",
            )
    gripper_moved = math.dist(_gripper(rehearsed.before), _gripper(rehearsed.after)) > MOVED_M
    grip_changed = rehearsed.before["gripper"]["open"] != rehearsed.after["gripper"]["open"]
    if not dry.moved and not dry.said and not gripper_moved and not grip_changed:
        return _reject(
            dry,
            ErrorKind.NO_EFFECT,
            "the program ran but changed nothing and said nothing. "
            "If the command cannot be done, say() why; otherwise write the program that does it.",
        )
    return dry


def choose(candidates: list[DryRun]) -> tuple[DryRun | None, int]:
    """The survivor whose final scene the most other survivors agree with (every object within
    AGREE_M), earliest first on ties; with how many agree with it."""
    survivors = [c for c in candidates if c.rejected is None]
    best, best_votes = None, -1
    for c in survivors:
        votes = sum(_agree(c.final, o.final) for o in survivors if o is not c)
        if votes > best_votes:
            best, best_votes = c, votes
    return best, max(best_votes, 0)


def is_compositional(code: str, dry: DryRun, helpers: list[str]) -> bool:
    """A command worth more than one candidate: its program loops, builds a list, calls a nested
    LMP or a generated helper, or makes three or more motions."""
    if helpers or dry.motions >= 3:
        return True
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    loops = (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp)
    for node in ast.walk(tree):
        if isinstance(node, loops):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NESTED:
            return True
    return False


def _reject(dry: DryRun, kind: ErrorKind, message: str) -> DryRun:
    dry.rejected, dry.error = kind, RunError(kind, message)
    return dry


def _objects(state: SceneState) -> dict[str, list[float]]:
    return {n: [float(v) for v in o["position"]][:3] for n, o in state["objects"].items()}


def _gripper(state: SceneState) -> list[float]:
    return [float(v) for v in state["gripper"]["position"]][:3]


def _inside(p: list[float], ws: WorkspaceBounds) -> bool:
    (x0, x1), (y0, y1) = ws["x"], ws["y"]
    return x0 - OUTSIDE_M <= p[0] <= x1 + OUTSIDE_M and y0 - OUTSIDE_M <= p[1] <= y1 + OUTSIDE_M


def _agree(a: dict[str, list[float]], b: dict[str, list[float]]) -> bool:
    return a.keys() == b.keys() and all(math.dist(a[n], b[n]) <= AGREE_M for n in a)


def _xyz(p: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in p) + ")"
