"""What the LMPs need from the world: object names and positions, snapshots, and what moved.

Reads the backend's `state()` (docs/CONTRACTS.md "Scene state") when the API exposes its backend,
so prompt building does not show up as primitive calls in the trace; falls back to the policy
functions otherwise.
"""

from __future__ import annotations

from typing import Any

from capstan.primitives.errors import PrimitiveError


def backend_of(api: Any) -> Any:
    return getattr(api, "backend", None) or getattr(api, "_backend", None)


def scene_state(api: Any) -> dict | None:
    backend = backend_of(api)
    if backend is not None and hasattr(backend, "state"):
        return backend.state()
    return None


def scene_objects(api: Any) -> tuple[list[str], dict[str, list[float]]]:
    """(object names, {name: [x, y]}) of the current scene."""
    state = scene_state(api)
    if state is not None:
        objs = state.get("objects", {})
        return list(objs), {n: [float(o["position"][0]), float(o["position"][1])] for n, o in objs.items()}
    fns = api.functions()
    names = list(fns["get_obj_names"]())
    return names, {n: [float(v) for v in fns["get_obj_pos"](n)[:2]] for n in names}


def pure_reads(api: Any) -> tuple[str, ...]:
    """The API's functions the sandbox may answer again without asking (none for APIs that do not say)."""
    pure = getattr(api, "pure_functions", None)
    return tuple(pure()) if pure is not None else ()


def can_snapshot(api: Any) -> bool:
    backend = backend_of(api)
    return (
        backend is not None
        and callable(getattr(backend, "snapshot", None))
        and callable(getattr(backend, "restore", None))
    )


def snapshot(api: Any) -> Any:
    return backend_of(api).snapshot() if can_snapshot(api) else None


def restore(api: Any, snap: Any) -> None:
    if snap is None or not can_snapshot(api):
        raise PrimitiveError(
            "undo is not supported by this robot: its backend cannot snapshot and restore the world"
        )
    backend_of(api).restore(snap)


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
