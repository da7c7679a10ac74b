"""What the LMPs need from the world: object names and positions, snapshots, and what moved.

Reads the backend's `state()` (docs/CONTRACTS.md "Scene state"), so prompt building does not show
up as primitive calls in the trace.
"""

from __future__ import annotations

from typing import Any

from capstan.primitives.api import PolicyAPI
from capstan.primitives.errors import PrimitiveError


def scene_objects(api: PolicyAPI) -> tuple[list[str], dict[str, list[float]]]:
    """(object names, {name: [x, y]}) of the current scene."""
    objs = api.backend.state()["objects"]
    return list(objs), {n: [float(o["position"][0]), float(o["position"][1])] for n, o in objs.items()}


def pure_reads(api: PolicyAPI) -> tuple[str, ...]:
    """The API's functions the sandbox may answer again without asking."""
    return api.pure_functions()


def snapshot(api: PolicyAPI) -> Any:
    """The world before a command, or None when the backend cannot snapshot."""
    return api.backend.snapshot() if api.backend.supports_snapshots else None


def restore(api: PolicyAPI, snap: Any) -> None:
    if snap is None or not api.backend.supports_snapshots:
        raise PrimitiveError(
            "undo is not supported by this robot: its backend cannot snapshot and restore the world"
        )
    api.backend.restore(snap)


def position_diff(
    before: dict[str, list[float]], after: dict[str, list[float]], tol: float = 0.01
) -> list[str]:
    """Human-readable lines for objects that moved more than `tol` metres."""
    out = []
    for name, (x0, y0) in before.items():
        if name not in after:
            out.append(f"{name} disappeared")
            continue
        x1, y1 = after[name]
        if abs(x1 - x0) > tol or abs(y1 - y0) > tol:
            out.append(f"{name} moved from ({x0:.2f}, {y0:.2f}) to ({x1:.2f}, {y1:.2f})")
    return out
