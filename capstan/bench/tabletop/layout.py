"""Explicit, valid object positions for task generators that need controlled geometry.

Uses the scene rules of sim.scene (workspace, edge margins, clearances) so every layout it returns
is accepted by `sim.World`; `accept(positions)` adds a task-specific condition (e.g. "the leftmost
block is clearly leftmost").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from capstan.sim.scene import CLEARANCE, EDGE_MARGIN, WORKSPACE


class LayoutError(RuntimeError):
    pass


def kind_of(name: str) -> str:
    return name.split()[-1]


def sample_positions(
    rng: random.Random,
    names: list[str],
    accept: Callable[[dict[str, tuple[float, float]]], bool] | None = None,
    fixed: dict[str, tuple[float, float]] | None = None,
    tries: int = 5000,
) -> dict[str, tuple[float, float]]:
    """Positions for `names` (rounded to mm) that fit the scene rules and satisfy `accept`."""
    ws = WORKSPACE
    for _ in range(tries):
        placed: dict[str, tuple[float, float]] = dict(fixed or {})
        ok = True
        for name in names:
            if name in placed:
                continue
            kind = kind_of(name)
            m = EDGE_MARGIN[kind]
            for _ in range(200):
                p = (
                    round(rng.uniform(ws.x[0] + m, ws.x[1] - m), 3),
                    round(rng.uniform(ws.y[0] + m, ws.y[1] - m), 3),
                )
                if fits(p, kind, placed):
                    placed[name] = p
                    break
            else:
                ok = False
                break
        if ok and (accept is None or accept(placed)):
            return placed
    raise LayoutError(f"no layout for {names} satisfies the task's condition after {tries} tries")


def fits(p: tuple[float, float], kind: str, placed: dict[str, tuple[float, float]]) -> bool:
    # a little more room than the sim demands, so nothing starts touching
    return all(math.dist(p, q) >= CLEARANCE[kind] + CLEARANCE[kind_of(n)] + 0.005 for n, q in placed.items())


def inside(p: tuple[float, float], margin: float) -> bool:
    ws = WORKSPACE
    return ws.x[0] + margin <= p[0] <= ws.x[1] - margin and ws.y[0] + margin <= p[1] <= ws.y[1] - margin


def scene_objects(positions: dict[str, tuple[float, float]], order: list[str] | None = None) -> list[dict]:
    return [{"name": n, "position": list(positions[n])} for n in (order or list(positions))]
