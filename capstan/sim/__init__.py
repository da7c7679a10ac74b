"""The PyBullet tabletop world (implements primitives.RobotBackend).

Coordinates: metres in the table frame. Seen from the top-down camera +x is right, +y is top
(far from the robot), +z is up; the table surface is z = table_z = 0. The Panda's base sits at
the origin, below the bottom edge of the workspace x in [-0.25, 0.25], y in [0.30, 0.70].
Named positions (corners, side midpoints, middle) are derived from those bounds.

    from capstan.sim import World
    world = World({"blocks": 3, "bowls": 3, "seed": 7})   # or {"objects": [...], "seed": 7}
    world.state()                                          # scene-state JSON (docs/CONTRACTS.md)
    snap = world.snapshot(); ...; world.restore(snap)
    img = world.render("top")                              # RGB, depth (m), segmentation, K, pose
"""

from __future__ import annotations

import importlib

# WORKSPACE stays importable as sim.WORKSPACE / sim.scene.WORKSPACE; it is left out of __all__
# so that plain sorted() order and ruff's constants-first order agree.
__all__ = [
    "DT",
    "SceneError",
    "Snapshot",
    "Workspace",
    "World",
    "build_layout",
    "named_positions",
    "write_gif",
    "write_mp4",
]

_LAZY = {
    "DT": "capstan.sim.world",
    "SceneError": "capstan.sim.scene",
    "Snapshot": "capstan.sim.world",
    "WORKSPACE": "capstan.sim.scene",
    "World": "capstan.sim.world",
    "Workspace": "capstan.primitives.backend",
    "named_positions": "capstan.primitives.geometry",
    "build_layout": "capstan.sim.scene",
    "write_gif": "capstan.sim.recorder",
    "write_mp4": "capstan.sim.recorder",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
