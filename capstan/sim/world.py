"""The PyBullet tabletop world: table, Panda arm, blocks and bowls. Implements RobotBackend.

Every PyBullet call names this world's client, so several worlds live in one process. Time is
simulated (fixed step DT); nothing depends on the wall clock, so the same spec and the same calls
give the same final state.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import numpy as np
import pybullet as p
import pybullet_data

from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
from capstan.primitives.errors import InvalidArgumentError, RobotStoppedError, UnreachableError
from capstan.primitives.geometry import named_positions
from capstan.primitives.scene_state import GripperStatus, ObjectState, SceneState
from capstan.sim import bodies, camera
from capstan.sim.bodies import BodyState
from capstan.sim.frames import FrameJob, FrameState, render_frames
from capstan.sim.robot import ARM_JOINTS, FINGER_JOINTS, FINGER_OPEN, IK_TOLERANCE, PandaModel
from capstan.sim.scene import WORKSPACE, build_layout

DT = 1.0 / 240.0
SUBSTEPS = 8  # physics steps per Cartesian waypoint (one IK solve each)
MAX_SPEED = 0.9  # m/s of the TCP at speed=1
MAX_YAW_RATE = 3.0  # rad/s
SOLVER_ITERATIONS = 20  # PyBullet's default is 50; 20 keeps grasps and stacks steady at half the cost
MIN_MOVE_S = 0.15  # even short moves take this long (bounded accelerations)
SETTLE_STEPS = 150  # at most this many steps to converge at the end of a motion
REACH_TOLERANCE = 0.015  # a motion that ends farther than this from its goal failed


@dataclass(frozen=True)
class Snapshot:
    """The whole world state as plain data: every object's pose and velocity, the arm's joint
    positions and velocities, the gripper command and the simulated time. Restorable into any
    world with the same objects."""

    objects: tuple[tuple[str, BodyState], ...]
    joints: tuple[tuple[float, float], ...]
    steps: int
    closed: bool
    arm_target: tuple[float, ...]
    yaw: float


class World(RobotBackend):
    """A tabletop scene built from a spec dict (see sim.scene). `gui=True` opens a viewer;
    `workspace` is the table's box (another robot's, for a twin of it)."""

    changes_only_when_commanded = True  # physics steps only inside move_ee / set_gripper / wait
    supports_snapshots = True
    supports_recording = True
    supports_placing = True

    def __init__(self, spec: dict | None = None, *, gui: bool = False, workspace: Workspace = WORKSPACE):
        self._ws = workspace
        layout, self.seed = build_layout(
            spec if spec is not None else {"blocks": 3, "bowls": 3, "seed": 0}, workspace
        )
        if gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            # PyBullet would exit the whole process when it cannot reach an X server
            raise RuntimeError("World(gui=True) needs a display: set DISPLAY (e.g. run under xvfb-run)")
        self.cid = p.connect(p.GUI if gui else p.DIRECT)
        if self.cid < 0:
            raise RuntimeError(
                "could not open the PyBullet GUI (needs a display and only one GUI per process); "
                "use World(spec) headless, or set DISPLAY"
            )
        if gui:
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=self.cid)
            p.resetDebugVisualizerCamera(0.9, 180, -40, [0.0, 0.45, 0.0], physicsClientId=self.cid)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.cid)
        p.setTimeStep(DT, physicsClientId=self.cid)
        p.setGravity(0, 0, -9.81, physicsClientId=self.cid)
        p.setPhysicsEngineParameter(
            deterministicOverlappingPairs=1, numSolverIterations=SOLVER_ITERATIONS, physicsClientId=self.cid
        )
        self.table = bodies.make_table(self.cid, workspace)
        self.robot = PandaModel(self.cid)
        self._layout = layout
        self._factory = bodies.ObjectFactory(self.cid)
        self.objects: dict[str, bodies.ObjectBody] = {}
        self._names_by_id: dict[int, str] = {}
        self._make_objects(bodies.initial_states(layout, workspace))
        self._views = camera.views(workspace)
        self._steps = 0
        self._closed = False
        self._current_yaw = 0.0
        self._arm_target = self.robot.reset_home()
        self._stop = threading.Event()
        self._rec: dict | None = None
        self.robot.command_arm(self._arm_target)
        self.robot.command_fingers(FINGER_OPEN)
        self._run(40)  # let the objects settle on the table

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        # once only: PyBullet hands a disconnected client's id to the next world that connects
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if p.isConnected(self.cid):
            self.robot.close()
            p.disconnect(self.cid)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- stepping ---------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return self._steps * DT

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise RobotStoppedError("the robot was stopped (e-stop); no further motion until resume()")

    def _halt(self) -> None:
        self._arm_target = list(self.robot.arm_q())
        self.robot.command_arm(self._arm_target)
        p.stepSimulation(physicsClientId=self.cid)
        self._steps += 1

    def _run(self, n: int) -> None:
        for _ in range(n):
            if self._stop.is_set():
                self._halt()
                self._check_stop()
            p.stepSimulation(physicsClientId=self.cid)
            self._steps += 1
            if self._rec is not None and self._steps >= self._rec["next"]:
                self._capture()

    # -- RobotBackend -----------------------------------------------------------------------
    def workspace(self) -> Workspace:
        return self._ws

    def ee_position(self) -> np.ndarray:
        return self.robot.tcp()

    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        self._check_stop()
        goal = np.asarray(xyz, dtype=float).reshape(3)
        if not (np.all(np.isfinite(goal)) and math.isfinite(yaw) and math.isfinite(speed) and speed > 0):
            raise InvalidArgumentError(
                f"move_ee needs finite xyz, yaw and a positive speed, got {xyz}, {yaw}, {speed}"
            )
        q_goal, err = self.robot.solve_goal(goal, yaw, self._arm_target)
        if err > IK_TOLERANCE:
            raise UnreachableError(
                f"the arm cannot reach {np.round(goal, 3).tolist()} pointing down (closest {err * 100:.1f} "
                "cm away); "
                "choose a point nearer the middle of the table or higher above it"
            )
        start = self.robot.tcp()
        yaw0 = self._current_yaw
        dyaw = math.remainder(yaw - yaw0, 2 * math.pi)
        v = MAX_SPEED * min(speed, 2.0)
        duration = max(np.linalg.norm(goal - start) / v, abs(dyaw) / MAX_YAW_RATE, MIN_MOVE_S)
        n = max(1, math.ceil(duration / (DT * SUBSTEPS)))
        q0, qg = np.asarray(self._arm_target), np.asarray(q_goal)
        path = []
        for i in range(1, n):
            s = i / n
            s = s * s * (3 - 2 * s)  # smooth start and stop
            seed = list(q0 + (qg - q0) * s)  # drifts towards the goal's joint angles
            path.append(
                np.asarray(self.robot.solve_ik(start + (goal - start) * s, yaw0 + dyaw * s, seed, 1)[0])
            )
        path.append(qg)
        prev = q0
        for i, q in enumerate(path[:-1]):
            # velocity feed-forward (central difference) keeps the tracking lag small
            qd = (path[i + 1] - prev) / (2 * SUBSTEPS * DT)
            self._arm_target = list(q)
            self.robot.command_arm(self._arm_target, list(qd))
            self._run(SUBSTEPS)
            prev = q
        self._arm_target = list(q_goal)
        self._current_yaw = yaw
        self.robot.command_arm(q_goal)
        self._settle(q_goal)
        miss = float(np.linalg.norm(self.robot.tcp() - goal))
        if miss > REACH_TOLERANCE:
            raise UnreachableError(
                f"the gripper stopped {miss * 100:.1f} cm short of {np.round(goal, 3).tolist()}; something "
                "is in the way"
            )

    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        goal = np.asarray(xyz, dtype=float).reshape(3)
        return (
            bool(np.all(np.isfinite(goal)))
            and self.robot.solve_goal(goal, yaw, self._arm_target)[1] <= IK_TOLERANCE
        )

    def _settle(self, q_goal: list[float]) -> None:
        for _ in range(SETTLE_STEPS // 3):
            q, qd = self.robot.arm_q(), self.robot.arm_qd()
            if max(abs(a - b) for a, b in zip(q, q_goal, strict=False)) < 2e-3 and max(map(abs, qd)) < 0.05:
                return
            self._run(3)

    def set_gripper(self, closed: bool) -> bool:
        self._check_stop()
        self._closed = bool(closed)
        self.robot.command_fingers(0.0 if closed else FINGER_OPEN)
        prev = None
        for i in range(40):
            self._run(3)
            w = sum(self.robot.finger_q())
            if prev is not None and i >= 4 and abs(w - prev) < 2e-5:
                break
            prev = w
        return self.holding() is not None

    def holding(self) -> str | None:
        """Name of the object both closed fingers touch, if any."""
        if not self._closed:
            return None
        touch = []
        for link in (9, 10):
            cps = p.getContactPoints(bodyA=self.robot.body, linkIndexA=link, physicsClientId=self.cid)
            touch.append({c[2] for c in cps if c[2] in self._names_by_id})
        both = sorted(touch[0] & touch[1])
        return self._names_by_id[both[0]] if both else None

    def gripper_state(self) -> GripperStatus:
        return {
            "open": not self._closed,
            "width": float(sum(self.robot.finger_q())),
            "holding": self.holding(),
        }

    def wait(self, seconds: float) -> None:
        self._check_stop()
        if not (math.isfinite(seconds) and seconds >= 0):
            raise InvalidArgumentError(f"wait needs a finite, non-negative number of seconds, got {seconds}")
        self._run(round(seconds / DT))

    def stop(self) -> None:
        """Thread-safe: only sets a flag that the stepping loop checks every physics step."""
        self._stop.set()

    def resume(self) -> None:
        self._stop.clear()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- state ------------------------------------------------------------------------------
    def state(self) -> SceneState:
        objs: dict[str, ObjectState] = {}
        for name, o in self.objects.items():
            pos, orn = p.getBasePositionAndOrientation(o.body, physicsClientId=self.cid)
            objs[name] = {
                "kind": o.kind,
                "color": o.color,
                "position": [float(v) for v in pos],
                "orientation": [float(v) for v in orn],
            }
        ws = self._ws
        return {
            "objects": objs,
            "workspace": {"x": list(ws.x), "y": list(ws.y), "table_z": ws.table_z},
            "named_positions": named_positions(ws),
            "gripper": {"position": [float(v) for v in self.robot.tcp()], **self.gripper_state()},
            "robot": "panda",
            "seed": self.seed,
            "time_s": float(self.time_s),
        }

    def _make_objects(self, states: dict[str, BodyState]) -> None:
        """(Re)create every object, in layout order, in the given states."""
        for o in self.objects.values():
            p.removeBody(o.body, physicsClientId=self.cid)
        self.objects = {}
        for o in self._layout:
            body = self._factory.create(o.kind, o.color, states[o.name])
            self.objects[o.name] = bodies.ObjectBody(body, o.kind, o.color)
        self._names_by_id = {o.body: name for name, o in self.objects.items()}

    def place_objects(self, poses: dict) -> None:
        """Put objects where a saved scene state had them ({name: {"position", "orientation"}},
        e.g. a session revived after a restart), at rest, and let them settle. The arm stays
        where it is with the gripper as it is, so a block that was held drops onto what is below."""
        states = bodies.read_states(self.cid, self.objects)
        for name, pose in poses.items():
            if name not in states:
                raise ValueError(f"this world has no object {name!r}; it was built from another scene")
            position = tuple(float(v) for v in pose["position"])
            orientation = tuple(float(v) for v in pose["orientation"])
            if (
                len(position) != 3
                or len(orientation) != 4
                or not all(map(math.isfinite, position + orientation))
            ):
                raise ValueError(f"bad saved pose for {name!r}: {pose!r}")
            states[name] = bodies.BodyState(position, orientation)
        self._make_objects(states)
        p.performCollisionDetection(physicsClientId=self.cid)
        self._run(120)

    def put_arm(self, xyz, yaw: float = 0.0, grip_width: float | None = None) -> None:
        """Put the arm at once (no motion through space, no physics step) with its tool-centre
        point at `xyz` pointing down at `yaw`: a twin starting where another robot's arm stands.
        With `grip_width`, the fingers are set that far apart and commanded closed, so an object
        put between them is held from the next step on; else they are open."""
        goal = np.asarray(xyz, dtype=float).reshape(3)
        if not (np.all(np.isfinite(goal)) and math.isfinite(yaw)):
            raise InvalidArgumentError(f"put_arm needs a finite xyz and yaw, got {xyz}, {yaw}")
        q, err = self.robot.solve_goal(goal, yaw, self._arm_target)
        if err > IK_TOLERANCE:
            raise UnreachableError(
                f"the arm cannot be put at {np.round(goal, 3).tolist()} pointing down "
                f"(closest {err * 100:.1f} cm away)"
            )
        finger = FINGER_OPEN if grip_width is None else min(FINGER_OPEN, max(0.0, grip_width / 2))
        self.robot.set_joint_states([(v, 0.0) for v in q] + [(finger, 0.0), (finger, 0.0)])
        self._arm_target, self._current_yaw, self._closed = list(q), float(yaw), grip_width is not None
        self.robot.command_arm(self._arm_target)
        self.robot.command_fingers(0.0 if self._closed else FINGER_OPEN)
        p.performCollisionDetection(physicsClientId=self.cid)

    def snapshot(self) -> Snapshot:
        """Capture the world. The live world is re-laid from the capture too (objects recreated,
        joints reset), so continuing now and continuing after restore(snap) are bit-identical."""
        snap = Snapshot(
            objects=tuple(bodies.read_states(self.cid, self.objects).items()),
            joints=tuple(self.robot.joint_states()),
            steps=self._steps,
            closed=self._closed,
            arm_target=tuple(self._arm_target),
            yaw=self._current_yaw,
        )
        self._apply(snap)
        return snap

    def restore(self, snap: Snapshot) -> None:
        names = [n for n, _ in snap.objects]
        if not isinstance(snap, Snapshot) or names != list(self.objects):
            raise ValueError(
                f"this snapshot holds objects {names[:16]} but this world has {list(self.objects)}; "
                "restore it into a world built from the same scene spec"
            )
        self._apply(snap)

    def _apply(self, snap: Snapshot) -> None:
        self._make_objects(dict(snap.objects))
        self.robot.set_joint_states(snap.joints)
        self._steps, self._closed, self._arm_target = snap.steps, snap.closed, list(snap.arm_target)
        self._current_yaw = snap.yaw
        self.robot.command_arm(self._arm_target)
        self.robot.command_fingers(0.0 if self._closed else FINGER_OPEN)
        # contacts (e.g. a block held between the fingers) are known at once, before any step
        p.performCollisionDetection(physicsClientId=self.cid)

    # -- cameras and recording --------------------------------------------------------------
    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage:
        if view not in self._views:
            raise InvalidArgumentError(f"unknown view {view!r}; choose one of {sorted(self._views)}")
        if not (16 <= width <= 1920 and 16 <= height <= 1080):
            raise InvalidArgumentError(f"image size {width}x{height} out of range (16..1920 x 16..1080)")
        return camera.render(self.cid, self._views[view], width, height, self._names_by_id)

    def start_recording(
        self,
        fps: float = 10.0,
        view: str = "angled",
        width: int = 320,
        height: int = 240,
        max_frames: int = 1000,
    ) -> None:
        """Note the scene every 1/fps simulated seconds while the world steps (at most `max_frames`;
        later ones are dropped so a long program cannot exhaust memory). Drawing the frames waits
        for stop_recording(), so recording does not slow the motion."""
        if view not in self._views or not 0 < fps <= 60 or max_frames < 1:
            raise InvalidArgumentError(
                f"recording needs a view in {sorted(self._views)}, 0 < fps <= 60 and max_frames >= 1"
            )
        if not (16 <= width <= 1920 and 16 <= height <= 1080):
            raise InvalidArgumentError(f"image size {width}x{height} out of range (16..1920 x 16..1080)")
        self._rec = {
            "every": max(1, round(1.0 / (fps * DT))),
            "next": self._steps,
            "view": view,
            "size": (int(width), int(height)),
            "states": [],
            "max": int(max_frames),
        }
        self._capture()

    def _capture(self) -> None:
        rec = self._rec
        rec["next"] = self._steps + rec["every"]
        if len(rec["states"]) < rec["max"]:
            rec["states"].append(self._frame_state())

    def _frame_state(self) -> FrameState:
        joints = p.getJointStates(self.robot.body, ARM_JOINTS + FINGER_JOINTS, physicsClientId=self.cid)
        return FrameState(
            joints=tuple(float(s[0]) for s in joints),
            objects=tuple(
                (o.kind, o.color, p.getBasePositionAndOrientation(o.body, physicsClientId=self.cid))
                for o in self.objects.values()
            ),
        )

    @contextlib.contextmanager
    def headless(self) -> Iterator[None]:
        """Step without capturing frames inside (a dry run's motions are not part of the video)."""
        rec, self._rec = self._rec, None
        try:
            yield
        finally:
            self._rec = rec

    def stop_recording(self, skip_first: bool = False) -> list[np.ndarray]:
        """Stop recording; returns the RGB frames (H, W, 3 uint8) of the states noted since
        start_recording (from the second with `skip_first`), drawn now (in the frame renderer's
        process)."""
        rec, self._rec = self._rec, None
        if rec is None:
            return []
        width, height = rec["size"]
        view = self._views[rec["view"]]
        states = tuple(rec["states"][1:] if skip_first else rec["states"])
        return render_frames(FrameJob(self._ws.table_z, view, width, height, states))
