"""Questions checkers ask of a scene state (docs/CONTRACTS.md scene JSON): where things are and how
they relate. Thresholds are in metres and derived from the shared object sizes."""

from __future__ import annotations

import math

from capstan.primitives.geometry import BLOCK_SIZE, BOWL_RADIUS

IN_BOWL_RADIUS = BOWL_RADIUS  # a block's centre within the bowl's rim radius
STACK_XY_TOL = 0.75 * BLOCK_SIZE  # a block resting on another is centred within this
MOVED_TOL = 0.02  # displacement that counts as "moved"
ON_TABLE_MARGIN = 0.02  # below table_z by more than this: fell off the table


def xy(state: dict, name: str) -> tuple[float, float]:
    p = state["objects"][name]["position"]
    return (float(p[0]), float(p[1]))


def z(state: dict, name: str) -> float:
    return float(state["objects"][name]["position"][2])


def dist(a, b) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def names(state: dict, kind: str | None = None) -> list[str]:
    return sorted(n for n, o in state["objects"].items() if kind is None or o["kind"] == kind)


def in_bowl(state: dict, block: str, bowl: str) -> bool:
    return dist(xy(state, block), xy(state, bowl)) < IN_BOWL_RADIUS


def bowl_containing(state: dict, block: str) -> str | None:
    for bowl in names(state, "bowl"):
        if in_bowl(state, block, bowl):
            return bowl
    return None


def on_top(state: dict, upper: str, lower: str) -> bool:
    """`upper` rests on `lower` (directly: one block height higher, centred over it)."""
    dz = z(state, upper) - z(state, lower)
    return (
        dist(xy(state, upper), xy(state, lower)) < STACK_XY_TOL and 0.5 * BLOCK_SIZE < dz < 1.5 * BLOCK_SIZE
    )


def on_table(state: dict, name: str) -> bool:
    """Resting on the table surface itself (not on another object, not fallen off)."""
    table_z = float(state["workspace"]["table_z"])
    return abs(z(state, name) - (table_z + BLOCK_SIZE / 2)) < 0.5 * BLOCK_SIZE


def fell_off(state: dict) -> list[str]:
    table_z = float(state["workspace"]["table_z"])
    return [n for n in names(state) if z(state, n) < table_z - ON_TABLE_MARGIN]


def moved(before: dict, after: dict, tol: float = MOVED_TOL) -> list[str]:
    """Objects whose position changed by more than `tol` (3-D)."""
    out = []
    for n in names(before):
        if n not in after["objects"]:
            out.append(n)
            continue
        p, q = before["objects"][n]["position"], after["objects"][n]["position"]
        if math.dist(p, q) > tol:
            out.append(n)
    return out


def only_moved(states: list[dict], allowed: set[str]) -> tuple[bool, str]:
    """(ok, why not): nothing but `allowed` moved between the first and the last state."""
    extra = sorted(set(moved(states[0], states[-1])) - allowed)
    return (not extra, f"also moved {', '.join(extra)}")


def fmt(p) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in p) + "]"
