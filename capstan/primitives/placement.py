"""Where a block put down at a table position [x, y] would land, and the nearest spot where it lands
cleanly. A position target that would leave the block on a bowl's rim or half on another block is
refused before anything moves, with a spot the program can use instead (the error goes back to
the model as feedback)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from capstan.primitives.backend import Workspace
from capstan.primitives.errors import PlacementError
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_FLOOR_RADIUS, BOWL_RADIUS
from capstan.primitives.perception import Observation

IN_BOWL = BOWL_FLOOR_RADIUS  # a block centred within this of a bowl's centre rests in it
CLEAR_OF_BOWL = BOWL_RADIUS + BLOCK_SIZE / 2 + 0.005  # and from this out it stands beside it
ON_BLOCK = 0.015  # centred within this on a block: stacked on it
CLEAR_OF_BLOCK = BLOCK_SIZE - 0.002  # side by side, touching at most
SEARCH_STEP, SEARCH_RADIUS, SEARCH_ANGLES = 0.005, 0.25, 32
MARGIN = 0.002  # a free spot keeps this much more room, so the object settling a little is fine


def conflict(xy: np.ndarray, objects: Mapping[str, Observation], moving: str | None) -> str | None:
    """Why a block put down at `xy` would not land cleanly, or None when it would (on the table,
    in a bowl, or squarely on a block)."""
    for o in objects.values():
        if o.name == moving:
            continue
        d = float(np.hypot(*(xy - o.position[:2])))
        if o.kind == "bowl" and IN_BOWL <= d < CLEAR_OF_BOWL:
            return (
                f"it would land on the rim of the {o.name!r} ({d * 100:.1f} cm from its centre; a block goes "
                f"in it within {IN_BOWL * 100:.1f} cm, beside it from {CLEAR_OF_BOWL * 100:.1f} cm)"
            )
        if o.kind == "block" and ON_BLOCK <= d < CLEAR_OF_BLOCK:
            return (
                f"it would land half on the {o.name!r} ({d * 100:.1f} cm from its centre; on it within "
                f"{ON_BLOCK * 100:.1f} cm, beside it from {CLEAR_OF_BLOCK * 100:.1f} cm)"
            )
    return None


def _clear(xy: np.ndarray, objects: Mapping[str, Observation], moving: str | None, ws: Workspace) -> bool:
    """On the bare table: inside the workspace and clear of every other object."""
    if not ws.contains(xy, margin=-BLOCK_SIZE / 2):
        return False
    for o in objects.values():
        if o.name == moving:
            continue
        near = (CLEAR_OF_BOWL if o.kind == "bowl" else CLEAR_OF_BLOCK) + MARGIN
        if np.hypot(*(xy - o.position[:2])) < near:
            return False
    return True


def nearest_free(
    xy: np.ndarray, objects: Mapping[str, Observation], moving: str | None, ws: Workspace
) -> np.ndarray | None:
    """The closest spot on the bare table (rings of SEARCH_STEP around `xy`), or None."""
    angles = np.linspace(0.0, 2 * np.pi, SEARCH_ANGLES, endpoint=False)
    for r in np.arange(SEARCH_STEP, SEARCH_RADIUS + 1e-9, SEARCH_STEP):
        for a in angles:
            p = np.round(xy + r * np.array([np.cos(a), np.sin(a)]), 3)  # exactly the spot we name
            if _clear(p, objects, moving, ws):
                return p
    return None


def check_target(
    xy: np.ndarray, objects: Mapping[str, Observation], moving: str | None, ws: Workspace
) -> None:
    """Raise PlacementError, naming the nearest free spot, when `xy` would not land cleanly."""
    why = conflict(xy, objects, moving)
    if why is None:
        return
    spot = nearest_free(xy, objects, moving, ws)
    where = f"the nearest free spot is {spot.tolist()}" if spot is not None else "no free spot is near"
    raise PlacementError(f"target {np.round(xy, 3).tolist()}: {why}; {where}")
