"""FakeBackend: a kinematic RobotBackend test double (no physics, no rendering engine).

The gripper teleports; closing it next to a block's centre grasps that block, which then moves
with the gripper; opening drops it straight down onto whatever lies below (table, block top, bowl
floor). Good for fast tests of code that only needs the RobotBackend contract (primitives,
lmp, app). The physical world is sim.World.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
from capstan.primitives.errors import RobotStoppedError, UnreachableError
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_RADIUS, BOWL_WALL, named_positions
from capstan.primitives.scene_state import GripperStatus, SceneState

DEFAULT_WORKSPACE = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)
OPEN_WIDTH = 0.07
GRASP_REACH = 0.015  # the TCP must be this close (xy) to a block's centre to grasp it


class FakeBackend(RobotBackend):
    """`objects` maps names like "red block" to [x, y] (resting on the table) or [x, y, z]."""

    changes_only_when_commanded = True

    def __init__(
        self, objects: dict[str, list[float]], workspace: Workspace = DEFAULT_WORKSPACE, seed: int = 0
    ):
        self.ws, self.seed = workspace, seed
        self.objects: dict[str, dict] = {}
        for name, pos in objects.items():
            color, kind = name.split()
            z = workspace.table_z + (BLOCK_SIZE / 2 if kind == "block" else 0.0)
            xyz = [float(pos[0]), float(pos[1]), float(pos[2]) if len(pos) > 2 else z]
            self.objects[name] = {"kind": kind, "color": color, "position": xyz}
        self.tcp = np.array([0.0, workspace.y[0] - 0.08, workspace.table_z + 0.35])
        self.closed, self.held, self.time_s = False, None, 0.0
        self._stop = threading.Event()
        self.calls: list[tuple] = []  # every motion verb, for assertions

    def workspace(self) -> Workspace:
        return self.ws

    def state(self) -> SceneState:
        ws = self.ws
        return {
            "objects": {
                n: {
                    "kind": o["kind"],
                    "color": o["color"],
                    "position": list(o["position"]),
                    "orientation": [0.0, 0.0, 0.0, 1.0],
                }
                for n, o in self.objects.items()
            },
            "workspace": {"x": list(ws.x), "y": list(ws.y), "table_z": ws.table_z},
            "named_positions": named_positions(ws),
            "gripper": {"position": [float(v) for v in self.tcp], **self.gripper_state()},
            "robot": "fake",
            "seed": self.seed,
            "time_s": self.time_s,
        }

    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage:
        raise NotImplementedError("FakeBackend has no camera; use perception='truth'")

    def ee_position(self) -> np.ndarray:
        return self.tcp.copy()

    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        x, y, z = (float(v) for v in xyz)
        return self.ws.contains((x, y), margin=0.1) and self.ws.table_z <= z <= self.ws.table_z + 0.6

    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        self._check()
        if not self.can_reach(xyz, yaw):
            raise UnreachableError(f"the fake arm cannot reach {list(map(float, xyz))}")
        self.calls.append(("move_ee", [float(v) for v in xyz], float(yaw)))
        goal = np.asarray(xyz, dtype=float)
        self.time_s += float(np.linalg.norm(goal - self.tcp)) / (0.9 * speed) + 0.1
        self.tcp = goal
        if self.held:
            self.objects[self.held]["position"] = [float(v) for v in goal]

    def set_gripper(self, closed: bool) -> bool:
        self._check()
        self.calls.append(("set_gripper", bool(closed)))
        self.time_s += 0.3
        if closed and not self.closed:
            self.held = next(
                (
                    n
                    for n, o in self.objects.items()
                    if o["kind"] == "block"
                    and math.dist(o["position"][:2], self.tcp[:2]) < GRASP_REACH
                    and abs(o["position"][2] - self.tcp[2]) < BLOCK_SIZE / 2
                ),
                None,
            )
        if not closed and self.held:
            self.objects[self.held]["position"][2] = self._support_z(self.held) + BLOCK_SIZE / 2
            self.held = None
        self.closed = bool(closed)
        return self.held is not None

    def _support_z(self, name: str) -> float:
        xy = self.objects[name]["position"][:2]
        z = self.ws.table_z
        for n, o in self.objects.items():
            d = math.dist(o["position"][:2], xy)
            if n == name or o["position"][2] > self.objects[name]["position"][2]:
                continue
            if o["kind"] == "block" and d < BLOCK_SIZE * 0.75:
                z = max(z, o["position"][2] + BLOCK_SIZE / 2)
            elif o["kind"] == "bowl" and d < BOWL_RADIUS:
                z = max(z, o["position"][2] + BOWL_WALL)
        return z

    def gripper_state(self) -> GripperStatus:
        width = (BLOCK_SIZE if self.held else 0.0) if self.closed else OPEN_WIDTH
        return {"open": not self.closed, "width": width, "holding": self.held}

    def wait(self, seconds: float) -> None:
        self._check()
        self.time_s += float(seconds)

    def stop(self) -> None:
        self._stop.set()

    def resume(self) -> None:
        self._stop.clear()

    def _check(self) -> None:
        if self._stop.is_set():
            raise RobotStoppedError("the robot was stopped (e-stop); no further motion until resume()")
