"""Pick and place built only from RobotBackend verbs, so any backend gets them for free.

pick:  open -> above the block at travel height -> descend -> close -> lift (check the grasp)
place: above the target -> descend to the release height (on a block: stack; in a bowl: drop
       from just above the rim; on the table: just above it) -> open -> retreat up.
"""

from __future__ import annotations

import math

import numpy as np

from primitives.backend import RobotBackend
from primitives.errors import GraspError
from primitives.geometry import BLOCK_SIZE, BOWL_HEIGHT, BOWL_RADIUS
from primitives.perception import Observation
from primitives.validation import Z_MAX

TRAVEL_MIN = 0.15  # lowest travel height above the table
TRAVEL_CLEARANCE = 0.06  # travel this far above the tallest object (plus a held block)
DESCEND_SPEED = 0.5
GRASP_BELOW_TOP = BLOCK_SIZE / 2  # grasp a block this far below its top face
RELEASE_GAP = 0.006  # a placed block is let go this far above its support
BOWL_DROP_GAP = 0.012  # a block is dropped into a bowl from this far above the rim
RETREAT_SLOW = 0.05  # metres lifted slowly after letting go
FINGER_REACH = 0.06  # open fingers reach this far from the TCP along the closing axis


def park_position(ws) -> list[float]:
    """Where the gripper waits out of the top camera's view: in front of the workspace's bottom edge."""
    return [(ws.x[0] + ws.x[1]) / 2, ws.y[0] - 0.08, ws.table_z + 0.35]


def top_of(o: Observation) -> float:
    return float(o.position[2]) + (BLOCK_SIZE / 2 if o.kind == "block" else BOWL_HEIGHT)


def travel_height(objs: dict[str, Observation], table_z: float, held: str | None) -> float:
    tops = [top_of(o) for n, o in objs.items() if o.visible and n != held]
    z = max([table_z] + tops) + TRAVEL_CLEARANCE + (BLOCK_SIZE if held else 0.0)
    return float(min(max(z, table_z + TRAVEL_MIN), table_z + Z_MAX))


def grasp_yaws(block: Observation, objs: dict[str, Observation], block_yaw: float) -> list[float]:
    """The two yaws in [-pi/2, pi/2] closing the fingers across opposite faces of the block,
    best first: the one whose fingers end up farthest from neighbouring objects."""
    base = math.remainder(block_yaw, math.pi / 2)  # in [-pi/4, pi/4]
    centre = block.position[:2]
    others = [o for o in objs.values() if o.visible and o.name != block.name]

    def clearance(yaw: float) -> float:
        axis = np.array([math.cos(yaw), math.sin(yaw)])
        fingers = [centre + axis * FINGER_REACH, centre - axis * FINGER_REACH]
        gaps = [
            np.linalg.norm(f - o.position[:2]) - (BOWL_RADIUS if o.kind == "bowl" else BLOCK_SIZE * 0.71)
            for f in fingers
            for o in others
        ]
        return min(gaps, default=1.0)

    options = [base, math.remainder(base + math.pi / 2, math.pi)]
    return sorted(options, key=lambda y: (round(clearance(y), 3), -abs(y)), reverse=True)


def release_height(target_xy, objs: dict[str, Observation], table_z: float, held: str | None) -> float:
    """TCP height at which to let go of a held block above `target_xy`."""
    support = table_z + RELEASE_GAP
    for o in objs.values():
        if not o.visible or o.name == held:
            continue
        d = float(np.linalg.norm(o.position[:2] - np.asarray(target_xy)))
        if o.kind == "bowl" and d < BOWL_RADIUS:
            support = max(support, top_of(o) + BOWL_DROP_GAP)
        elif o.kind == "block" and d < BLOCK_SIZE * 0.75:
            support = max(support, top_of(o) + RELEASE_GAP)
    return support + BLOCK_SIZE / 2


def pick(
    backend: RobotBackend, block: Observation, objs: dict[str, Observation], table_z: float, block_yaw: float
) -> float:
    """Grasp `block`; returns the yaw used. Raises GraspError when nothing ends up held."""
    x, y = (float(v) for v in block.position[:2])
    h = travel_height(objs, table_z, None)
    grasp_z = max(top_of(block) - GRASP_BELOW_TOP, table_z + 0.015)
    yaws = grasp_yaws(block, objs, block_yaw)
    yaw = next(
        (a for a in yaws if backend.can_reach([x, y, grasp_z], a) and backend.can_reach([x, y, h], a)),
        yaws[0],
    )
    if not backend.gripper_state()["open"]:
        backend.set_gripper(False)
    up = backend.ee_position()
    if up[2] < h - 1e-3:
        backend.move_ee([up[0], up[1], h], yaw)
    backend.move_ee([x, y, h], yaw)
    backend.move_ee([x, y, grasp_z], yaw, speed=DESCEND_SPEED)
    held = backend.set_gripper(True)
    backend.move_ee([x, y, h], yaw)
    now = backend.gripper_state()["holding"]
    if not held or now != block.name:
        backend.set_gripper(False)
        what = (
            f"closed on {now!r} instead"
            if now
            else "closed on nothing"
            if not held
            else "lost it while lifting"
        )
        raise GraspError(
            f"could not pick up {block.name!r}: the gripper {what}; check its position and retry"
        )
    return yaw


def place(
    backend: RobotBackend, target_xy, objs: dict[str, Observation], table_z: float, held: str, yaw: float
) -> None:
    """Put the held block down above `target_xy` (stacking or dropping as the support requires)."""
    x, y = (float(v) for v in target_xy)
    h = travel_height(objs, table_z, held)
    up = backend.ee_position()
    if up[2] < h - 1e-3:
        backend.move_ee([up[0], up[1], h], yaw)
    backend.move_ee([x, y, h], yaw)
    if backend.gripper_state()["holding"] != held:
        raise GraspError(f"dropped {held!r} on the way to {[round(x, 3), round(y, 3)]}")
    release_z = release_height((x, y), objs, table_z, held)
    backend.move_ee([x, y, release_z], yaw, speed=DESCEND_SPEED)
    backend.set_gripper(False)
    # back off slowly first: the open fingers clear the block by only ~1.5 cm
    backend.move_ee([x, y, min(release_z + RETREAT_SLOW, h)], yaw, speed=DESCEND_SPEED)
    backend.move_ee([x, y, h], yaw)
