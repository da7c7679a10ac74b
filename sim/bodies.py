"""PyBullet bodies for the table, the blocks and the bowls."""

from __future__ import annotations

from dataclasses import dataclass

import pybullet as p

from primitives.backend import Workspace
from primitives.geometry import BLOCK_SIZE, COLORS
from sim.assets import BOWL_OBJ, bowl_collision_parts
from sim.scene import PlacedObject

BLOCK_MASS = 0.08
BOWL_MASS = 0.25
TABLE_COLOR = (0.80, 0.74, 0.64, 1.0)


@dataclass(frozen=True)
class ObjectBody:
    body: int
    kind: str
    color: str


def make_table(cid: int, ws: Workspace) -> int:
    """A static box whose top face is the plane z = ws.table_z."""
    half = [0.6, 0.6, 0.025]
    centre = [0.0, 0.35, ws.table_z - half[2]]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_COLOR, physicsClientId=cid)
    body = p.createMultiBody(0, col, vis, centre, physicsClientId=cid)
    p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=cid)
    return body


def _bowl_collision(cid: int) -> int:
    parts = bowl_collision_parts()
    kinds = [p.GEOM_CYLINDER if q["type"] == "cylinder" else p.GEOM_BOX for q in parts]
    return p.createCollisionShapeArray(
        kinds,
        radii=[q.get("radius", 0.0) for q in parts],
        halfExtents=[list(q.get("half_extents", (0, 0, 0))) for q in parts],
        lengths=[q.get("length", 0.0) for q in parts],
        collisionFramePositions=[list(q["position"]) for q in parts],
        collisionFrameOrientations=[p.getQuaternionFromEuler(q["euler"]) for q in parts],
        physicsClientId=cid,
    )


def make_objects(cid: int, layout: list[PlacedObject], ws: Workspace) -> dict[str, ObjectBody]:
    half = BLOCK_SIZE / 2
    block_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[half] * 3, physicsClientId=cid)
    bowl_col = _bowl_collision(cid) if any(o.kind == "bowl" for o in layout) else -1
    out: dict[str, ObjectBody] = {}
    for o in layout:
        rgba = [*COLORS[o.color], 1.0]
        orn = p.getQuaternionFromEuler([0, 0, o.yaw])
        if o.kind == "block":
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[half] * 3, rgbaColor=rgba, physicsClientId=cid)
            body = p.createMultiBody(BLOCK_MASS, block_col, vis, [*o.xy, ws.table_z + half], orn, physicsClientId=cid)
            p.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.002, rollingFriction=0.0,
                             restitution=0.0, physicsClientId=cid)
        else:
            vis = p.createVisualShape(p.GEOM_MESH, fileName=str(BOWL_OBJ), rgbaColor=rgba, physicsClientId=cid)
            body = p.createMultiBody(BOWL_MASS, bowl_col, vis, [*o.xy, ws.table_z], orn, physicsClientId=cid)
            p.changeDynamics(body, -1, lateralFriction=0.8, restitution=0.0, physicsClientId=cid)
        # resting objects sleep (skip collision work) until something touches them; the low
        # threshold keeps slowly pushed objects awake
        p.changeDynamics(body, -1, activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING, sleepThreshold=0.005,
                         physicsClientId=cid)
        out[o.name] = ObjectBody(body, o.kind, o.color)
    return out




