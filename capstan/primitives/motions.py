"""Pick and place built only from RobotBackend verbs, so any backend gets them for free.

pick:  open -> above the block at travel height -> descend -> close -> lift (check the grasp)
place: above the target -> descend to the release height (on a block: stack; in a bowl: drop
       from just above the rim; on the table: just above it) -> open -> retreat up.
"""

from __future__ import annotations

import math

import numpy as np

from capstan.primitives.backend import RobotBackend
from capstan.primitives.errors import GraspError
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_HEIGHT, BOWL_RADIUS
from capstan.primitives.perception import Observation
from capstan.primitives.validation import Z_MAX

TRAVEL_MIN = 0.15  # lowest travel height above the table
TRAVEL_CLEARANCE = 0.06  # travel this far above the tallest object (plus a held block)
DESCEND_SPEED = 0.5
GRASP_BELOW_TOP = BLOCK_SIZE / 2  # grasp a block this far below its top face
RELEASE_GAP = 0.006  # a placed block is let go this far above its support
BOWL_DROP_GAP = 0.012  # a block is dropped into a bowl from this far above the rim
RETREAT_SLOW = 0.05  # metres lifted slowly after letting go
FINGER_OUT = 0.065  # open fingers' outer faces are this far from the TCP along the closing axis
HAND_HALF = (0.108, 0.036)  # the hand body's half extents along / across the closing axis
HAND_BOTTOM = 0.035  # the hand body starts this far above the TCP
FINGER_TIP = 0.012  # the fingertips reach this far below the TCP
LOWEST_TCP = FINGER_TIP + 0.003  # no primitive takes the TCP lower: the fingertips stay off the table


def park_position(ws) -> list[float]:
    """Where the gripper waits out of the top camera's view: in front of the workspace's bottom edge."""
    return [(ws.x[0] + ws.x[1]) / 2, ws.y[0] - 0.08, ws.table_z + 0.35]


def top_of(o: Observation) -> float:
    return float(o.position[2]) + (BLOCK_SIZE / 2 if o.kind == "block" else BOWL_HEIGHT)


def travel_height(objs: dict[str, Observation], table_z: float, held: str | None) -> float:
    tops = [top_of(o) for n, o in objs.items() if o.visible and n != held]
    z = max([table_z] + tops) + TRAVEL_CLEARANCE + (BLOCK_SIZE if held else 0.0)
    return float(min(max(z, table_z + TRAVEL_MIN), table_z + Z_MAX))


def clearance(xy, yaw: float, tcp_z: float, objs: dict[str, Observation], skip: tuple[str, ...]) -> float:
    """Smallest gap (m) between the open gripper at (xy, tcp_z, yaw) and any other object: the
    fingers against every object, the wider hand body against objects reaching up to it."""
    c, s = math.cos(yaw), math.sin(yaw)
    gaps = [1.0]
    for o in objs.values():
        if not o.visible or o.name in skip:
            continue
        radius = BOWL_RADIUS if o.kind == "bowl" else BLOCK_SIZE * 0.71
        d = o.position[:2] - np.asarray(xy, dtype=float)
        along, across = abs(d[0] * c + d[1] * s), abs(-d[0] * s + d[1] * c)
        if top_of(o) > tcp_z - FINGER_TIP:  # not entirely below the fingertips
            finger = math.hypot(max(along - FINGER_OUT, 0.0), across) if along > FINGER_OUT else across
            gaps.append(finger - radius)
        if top_of(o) > tcp_z + HAND_BOTTOM:  # tall enough to meet the hand body
            gaps.append(math.hypot(max(along - HAND_HALF[0], 0.0), max(across - HAND_HALF[1], 0.0)) - radius)
    return min(gaps)


def best_yaws(
    xy, tcp_z: float, yaw: float, objs: dict[str, Observation], skip: tuple[str, ...]
) -> list[float]:
    """`yaw` and `yaw` + 90 degrees (equivalent for a square block), as yaws in [-pi/2, pi/2],
    ordered best first: most clearance around the gripper, then the least wrist rotation."""
    options = [math.remainder(yaw, math.pi), math.remainder(yaw + math.pi / 2, math.pi)]
    return sorted(
        options, key=lambda a: (round(clearance(xy, a, tcp_z, objs, skip), 3), -abs(a)), reverse=True
    )


def _reachable_yaw(backend: RobotBackend, xy, zs, options: list[float]) -> float:
    return next(
        (a for a in options if all(backend.can_reach([xy[0], xy[1], z], a) for z in zs)),
        options[0],
    )


def release_height(target_xy, objs: dict[str, Observation], table_z: float, held: str | None) -> float:
    """TCP height at which to let go of a held block above `target_xy`."""
    support = table_z + RELEASE_GAP
    for o in objs.values():
        if not o.visible or o.name == held:
            continue
        d = float(np.linalg.norm(o.position[:2] - np.asarray(target_xy)))
        # anything under the held block's footprint (half-diagonal 0.71 * size) holds it up
        if o.kind == "bowl" and d < BOWL_RADIUS + BLOCK_SIZE * 0.71:
            support = max(support, top_of(o) + BOWL_DROP_GAP)
        elif o.kind == "block" and d < BLOCK_SIZE * 1.42:
            support = max(support, top_of(o) + RELEASE_GAP)
    return support + BLOCK_SIZE / 2


def grasp_height(block: Observation, table_z: float) -> float:
    """TCP height at which the fingers close on `block`."""
    return max(top_of(block) - GRASP_BELOW_TOP, table_z + LOWEST_TCP)


def pick_column(block: Observation, objs: dict[str, Observation], table_z: float) -> list[list[float]]:
    """Where pick() takes the tool point above `block`: travel height, then down to the grasp."""
    x, y = (float(v) for v in block.position[:2])
    return [[x, y, travel_height(objs, table_z, None)], [x, y, grasp_height(block, table_z)]]


def place_column(target_xy, objs: dict[str, Observation], table_z: float, held: str) -> list[list[float]]:
    """Where place() takes the tool point above `target_xy`: travel height, then down to the release."""
    x, y = (float(v) for v in target_xy)
    return [[x, y, travel_height(objs, table_z, held)], [x, y, release_height((x, y), objs, table_z, held)]]


def pick(
    backend: RobotBackend, block: Observation, objs: dict[str, Observation], table_z: float, block_yaw: float
) -> float:
    """Grasp `block`; returns the yaw used. Raises GraspError when nothing ends up held."""
    x, y = (float(v) for v in block.position[:2])
    h = travel_height(objs, table_z, None)
    grasp_z = grasp_height(block, table_z)
    yaws = best_yaws((x, y), grasp_z, block_yaw, objs, (block.name,))
    yaw = _reachable_yaw(backend, (x, y), (grasp_z, h), yaws)
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
) -> float:
    """Put the held block down above `target_xy` (stacking or dropping as the support requires);
    returns the yaw used (the wrist may turn 90 degrees to keep the hand clear of neighbours)."""
    x, y = (float(v) for v in target_xy)
    h = travel_height(objs, table_z, held)
    release_z = release_height((x, y), objs, table_z, held)
    yaw = _reachable_yaw(backend, (x, y), (release_z, h), best_yaws((x, y), release_z, yaw, objs, (held,)))
    up = backend.ee_position()
    if up[2] < h - 1e-3:
        backend.move_ee([up[0], up[1], h], yaw)
    backend.move_ee([x, y, h], yaw)
    if backend.gripper_state()["holding"] != held:
        raise GraspError(f"dropped {held!r} on the way to {[round(x, 3), round(y, 3)]}")
    backend.move_ee([x, y, release_z], yaw, speed=DESCEND_SPEED)
    backend.set_gripper(False)
    # back off slowly first: the open fingers clear the block by only ~1.5 cm
    backend.move_ee([x, y, min(release_z + RETREAT_SLOW, h)], yaw, speed=DESCEND_SPEED)
    backend.move_ee([x, y, h], yaw)
    return yaw
