"""PyBullet bodies for the table, the blocks and the bowls."""

from __future__ import annotations

from dataclasses import dataclass

import pybullet as p

from capstan.primitives.backend import Workspace
from capstan.primitives.geometry import BLOCK_SIZE, COLORS
from capstan.sim.assets import BOWL_OBJ, bowl_collision_parts
from capstan.sim.scene import PlacedObject

BLOCK_MASS = 0.08
BOWL_MASS = 0.25
SLEEP_SPEED = 0.005  # m/s (and rad/s): slower than this counts as at rest
FLOOR_DEPTH = 0.75  # the floor is this far below the table top
FLOOR_COLOR = (0.42, 0.42, 0.45, 1.0)
TABLE_COLOR = (0.80, 0.74, 0.64, 1.0)


@dataclass(frozen=True)
class ObjectBody:
    body: int
    kind: str
    color: str


def make_table(cid: int, ws: Workspace) -> int:
    """A static box whose top face is the plane z = ws.table_z."""
    half = [0.45, 0.6, 0.025]
    centre = [0.0, 0.35, ws.table_z - half[2]]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_COLOR, physicsClientId=cid)
    body = p.createMultiBody(0, col, vis, centre, physicsClientId=cid)
    p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=cid)
    # a floor below, so anything pushed off the table comes to rest instead of falling forever
    fhalf = [3.0, 3.0, 0.01]
    floor = p.createCollisionShape(p.GEOM_BOX, halfExtents=fhalf, physicsClientId=cid)
    fvis = p.createVisualShape(p.GEOM_BOX, halfExtents=fhalf, rgbaColor=FLOOR_COLOR, physicsClientId=cid)
    p.createMultiBody(0, floor, fvis, [0.0, 0.0, ws.table_z - FLOOR_DEPTH - fhalf[2]], physicsClientId=cid)
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


@dataclass(frozen=True)
class BodyState:
    """Pose and velocity of one object, enough to recreate it exactly."""

    position: tuple[float, ...]
    orientation: tuple[float, ...]
    linear: tuple[float, ...] = (0.0, 0.0, 0.0)
    angular: tuple[float, ...] = (0.0, 0.0, 0.0)


def initial_states(layout: list[PlacedObject], ws: Workspace) -> dict[str, BodyState]:
    out = {}
    for o in layout:
        z = ws.table_z + (BLOCK_SIZE / 2 if o.kind == "block" else 0.0)
        out[o.name] = BodyState((o.xy[0], o.xy[1], z), tuple(p.getQuaternionFromEuler([0, 0, o.yaw])))
    return out


def read_states(cid: int, objects: dict[str, ObjectBody]) -> dict[str, BodyState]:
    out = {}
    for name, o in objects.items():
        pos, orn = p.getBasePositionAndOrientation(o.body, physicsClientId=cid)
        lin, ang = p.getBaseVelocity(o.body, physicsClientId=cid)
        out[name] = BodyState(tuple(pos), tuple(orn), tuple(lin), tuple(ang))
    return out


class ObjectFactory:
    """Creates blocks and bowls in one client, reusing collision and visual shapes."""

    def __init__(self, cid: int):
        self.cid = cid
        half = BLOCK_SIZE / 2
        self.block_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[half] * 3, physicsClientId=cid)
        self.bowl_col = _bowl_collision(cid)
        self._visuals: dict[tuple[str, str], int] = {}

    def _visual(self, kind: str, color: str) -> int:
        key = (kind, color)
        if key not in self._visuals:
            rgba = [*COLORS[color], 1.0]
            if kind == "block":
                vis = p.createVisualShape(
                    p.GEOM_BOX, halfExtents=[BLOCK_SIZE / 2] * 3, rgbaColor=rgba, physicsClientId=self.cid
                )
            else:
                vis = p.createVisualShape(
                    p.GEOM_MESH, fileName=str(BOWL_OBJ), rgbaColor=rgba, physicsClientId=self.cid
                )
            self._visuals[key] = vis
        return self._visuals[key]

    def create(self, kind: str, color: str, state: BodyState) -> int:
        cid = self.cid
        block = kind == "block"
        body = p.createMultiBody(
            BLOCK_MASS if block else BOWL_MASS,
            self.block_col if block else self.bowl_col,
            self._visual(kind, color),
            state.position,
            state.orientation,
            physicsClientId=cid,
        )
        if block:
            p.changeDynamics(
                body,
                -1,
                lateralFriction=1.0,
                spinningFriction=0.002,
                rollingFriction=0.0,
                restitution=0.0,
                physicsClientId=cid,
            )
        else:
            p.changeDynamics(body, -1, lateralFriction=0.8, restitution=0.0, physicsClientId=cid)
        # resting objects sleep (no collision work) until something touches them; the low
        # threshold keeps slowly pushed objects awake
        p.changeDynamics(
            body,
            -1,
            activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING,
            sleepThreshold=SLEEP_SPEED,
            physicsClientId=cid,
        )
        p.resetBaseVelocity(body, state.linear, state.angular, physicsClientId=cid)
        if max(map(abs, state.linear + state.angular)) < SLEEP_SPEED:
            # at rest: start asleep, so untouched objects cost nothing until something hits them
            p.changeDynamics(body, -1, activationState=p.ACTIVATION_STATE_SLEEP, physicsClientId=cid)
        return body
