"""Object sizes and named table positions shared by every backend.

A real-robot adapter uses the same blocks and bowls, so their sizes live here rather than in sim/.
Named positions are derived from the workspace bounds (docs/CONTRACTS.md "Coordinates").
"""

from __future__ import annotations

import numpy as np

from capstan.primitives.backend import Workspace

BLOCK_SIZE = 0.04  # edge of a cube block, metres
BOWL_RADIUS = 0.06  # outer radius at the rim, metres
BOWL_FLOOR_RADIUS = 0.045  # outer radius of the floor disk
BOWL_HEIGHT = 0.04  # rim height above the bowl's base, metres
BOWL_WALL = 0.006  # wall and floor thickness

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12),
    "orange": (1.0, 0.5, 0.05),
    "yellow": (0.95, 0.85, 0.1),
    "green": (0.15, 0.65, 0.2),
    "blue": (0.12, 0.3, 0.9),
    "purple": (0.5, 0.18, 0.7),
    "pink": (1.0, 0.55, 0.75),
    "cyan": (0.1, 0.85, 0.9),
    "brown": (0.5, 0.3, 0.12),
    "gray": (0.5, 0.5, 0.5),
    "white": (0.97, 0.97, 0.97),
}
# Colours no few-shot example mentions, for generalisation tests (bench `unseen_colors`). Scenes
# drawn at random ({"blocks": 3, "seed": 7}) keep to the classic palette above, so seeds stay stable.
EXTRA_COLORS: dict[str, tuple[float, float, float]] = {
    "black": (0.08, 0.08, 0.08),
    "teal": (0.0, 0.5, 0.45),
    "magenta": (0.85, 0.1, 0.75),
    "lime": (0.6, 0.95, 0.15),
}
CLASSIC_COLORS = tuple(COLORS)
COLORS.update(EXTRA_COLORS)
KINDS = ("block", "bowl")

CORNER_NAMES = ("top left corner", "top right corner", "bottom left corner", "bottom right corner")
SIDE_NAMES = ("top side", "bottom side", "left side", "right side")
POSITION_NAMES = (*CORNER_NAMES, *SIDE_NAMES, "middle")


def named_positions(ws: Workspace) -> dict[str, list[float]]:
    """The nine named [x, y] positions of a workspace: four corners, four side midpoints, middle."""
    (x0, x1), (y0, y1) = ws.x, ws.y
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    pts = {
        "top left corner": (x0, y1),
        "top right corner": (x1, y1),
        "bottom left corner": (x0, y0),
        "bottom right corner": (x1, y0),
        "top side": (xm, y1),
        "bottom side": (xm, y0),
        "left side": (x0, ym),
        "right side": (x1, ym),
        "middle": (xm, ym),
    }
    return {k: [float(v[0]), float(v[1])] for k, v in pts.items()}


def nearest_name(xy, names: tuple[str, ...], ws: Workspace) -> str:
    """Which of `names` (named positions of `ws`) lies closest to `xy`."""
    pos = named_positions(ws)
    p = np.asarray(xy, dtype=float)
    return min(names, key=lambda n: float(np.hypot(*(np.asarray(pos[n]) - p))))


def object_height(kind: str) -> float:
    """Height of an object of `kind` above its resting surface."""
    return BLOCK_SIZE if kind == "block" else BOWL_HEIGHT
