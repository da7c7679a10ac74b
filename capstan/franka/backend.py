"""FrankaBackend: a Franka arm and hand, driven through franky (libfranka), as a RobotBackend.

Capstan's verbs in the table frame become franky motions in the robot's base frame (a
Calibration maps between them). The robot has no camera here, so what is on the table is a
DeclaredScene: the operator declares it, and the robot's own grasps keep it up to date.

Motions run asynchronously in franky and are joined in short slices, so `stop()` (the e-stop,
called from another thread) preempts one at once with `robot.stop()`; later motions raise
RobotStoppedError until `resume()`. libfranka's errors come back as typed primitive errors the
model can act on. After a reflex the robot stays in its error state until the operator asks for
`recover()`: Capstan never clears a reflex by itself.

The reach check is a sphere around the shoulder, not inverse kinematics: a target inside it can
still be out of the joints' range, and a motion that ends away from its target raises
UnreachableError after the fact.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from capstan.franka import _franky
from capstan.franka.calibration import TABLE_WORKSPACE, Calibration
from capstan.franka.drawing import draw_top_view
from capstan.primitives import validation as check
from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
from capstan.primitives.declared import HELD_WIDTH_MIN, DeclaredScene
from capstan.primitives.errors import (
    GraspError,
    InvalidArgumentError,
    PrimitiveError,
    RobotStoppedError,
    RobotUnavailableError,
    UnreachableError,
)
from capstan.primitives.geometry import named_positions
from capstan.primitives.scene_state import GripperStatus, SceneState

DEFAULT_MAX_SPEED = 0.5  # highest relative dynamics factor (1.0 is the Franka's full speed)
MIN_DYNAMICS = 0.05  # slower motions than this only take longer
DEFAULT_GRASP_FORCE_N = 20.0
MAX_HAND_FORCE_N = 70.0  # the Franka Hand's continuous grasp force
GRASP_SPEED = 0.05  # m/s of the fingers
OPEN_SPEED = 0.1
OPEN_SLACK = 0.005  # fingers this close to their widest count as open
JOIN_SLICE_S = 0.02  # how often a running motion looks at the e-stop flag
MOTION_TIMEOUT_S = 30.0  # no tabletop motion takes longer; a hung one is stopped
REACH_TOLERANCE = 0.01  # a motion that ends farther than this from its target did not get there
# The reach model, in the base frame: the arm's shoulder (joint 2) and its reach to the flange
# (Franka: 0.855 m; kept below it, where the wrist still has room), the hand's length from the
# flange to the tool-centre point (it points down), and the column around the base it cannot serve.
SHOULDER = np.array([0.0, 0.0, 0.333])
REACH_M = 0.80
HAND_LENGTH = 0.1034
MIN_RADIUS_M = 0.25
MIN_TCP_HEIGHT = 0.005  # above the table surface


class FrankaBackend(RobotBackend):
    """A Franka robot over franky. Build it with `FrankaBackend.connect(host, ...)`, or hand in
    franky Robot and Gripper objects already connected."""

    supports_declaring = True
    supports_recovery = True

    def __init__(
        self,
        robot: Any,
        gripper: Any,
        *,
        calibration: Calibration | None = None,
        workspace: Workspace = TABLE_WORKSPACE,
        max_speed: float = DEFAULT_MAX_SPEED,
        max_force_n: float = MAX_HAND_FORCE_N,
        grasp_force_n: float = DEFAULT_GRASP_FORCE_N,
        objects: object = None,
    ):
        self._f = _franky.load()
        self.robot, self.gripper = robot, gripper
        self.calibration = calibration or Calibration()
        self._workspace = workspace
        self.max_speed = _limit(max_speed, "max_speed", 1.0)
        self.max_force_n = _limit(max_force_n, "max_force_n", MAX_HAND_FORCE_N)
        self.grasp_force_n = _limit(grasp_force_n, "grasp_force_n", MAX_HAND_FORCE_N)
        self.scene = DeclaredScene(workspace, objects)
        self._stop = threading.Event()
        self._closed = False
        self._t0 = time.monotonic()
        self.host = str(getattr(robot, "fci_hostname", "?"))
        # each motion carries its own factor; the global one must not scale it down again
        self.robot.relative_dynamics_factor = 1.0

    @classmethod
    def connect(cls, host: str, *, realtime: bool = False, **options: Any) -> FrankaBackend:
        """Connect to the robot and its hand at `host` (the FCI address). `realtime=True` insists on
        a real-time kernel, as a real robot should have; without one franky warns and carries on."""
        f = _franky.load()
        config = f.RealtimeConfig.Enforce if realtime else f.RealtimeConfig.Ignore
        try:
            robot = f.Robot(host, realtime_config=config)
            gripper = f.Gripper(host)
        except f.Exception as exc:
            raise RobotUnavailableError(
                f"cannot connect to the Franka at {host!r} ({type(exc).__name__}: {exc}); check that the "
                "robot is on, FCI is active in Desk and the address is right"
            ) from None
        return cls(robot, gripper, **options)

    # -- limits -----------------------------------------------------------------------------------
    def apply_limits(self, max_speed: float | None = None, max_force_n: float | None = None) -> None:
        """Lower the dynamics factor cap (`max_speed`, in move_ee's speed units: a relative dynamics
        factor) and the grasp force cap; limits only ever go down."""
        if max_speed is not None:
            if max_speed < MIN_DYNAMICS:  # every motion runs at least this fast: such a cap cannot be kept
                raise ValueError(
                    f"max_speed {max_speed} is below franky's slowest dynamics factor {MIN_DYNAMICS}"
                )
            self.max_speed = min(self.max_speed, _limit(max_speed, "max_speed", 1.0))
        if max_force_n is not None:
            self.max_force_n = min(self.max_force_n, _limit(max_force_n, "max_force_n", MAX_HAND_FORCE_N))

    # -- what is where ----------------------------------------------------------------------------
    def workspace(self) -> Workspace:
        return self._workspace

    def declare(self, objects: object) -> None:
        self.scene.declare(objects)

    def ee_position(self) -> np.ndarray:
        pose = self._call(lambda: self.robot.current_pose.end_effector_pose)
        return self.calibration.to_table(np.asarray(pose.translation, dtype=float))

    def state(self) -> SceneState:
        tcp = self.ee_position()
        ws = self._workspace
        return {
            "objects": self.scene.objects(tcp),
            "workspace": {"x": list(ws.x), "y": list(ws.y), "table_z": ws.table_z},
            "named_positions": named_positions(ws),
            "gripper": {"position": [float(v) for v in tcp], **self.gripper_state()},
            "robot": "franka",
            "seed": 0,
            "time_s": float(time.monotonic() - self._t0),
        }

    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage:
        """Every view is the same top-down drawing of the declared scene (drawing.py): no camera."""
        if not (16 <= width <= 1920 and 16 <= height <= 1080):
            raise InvalidArgumentError(f"image size {width}x{height} out of range (16..1920 x 16..1080)")
        tcp = self.ee_position()
        return draw_top_view(self.scene.objects(tcp), tcp, self._workspace, int(width), int(height))

    # -- the arm ----------------------------------------------------------------------------------
    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        return self._reach_problem(check.vector(xyz, 3, "a position")) is None

    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        self._check_stop()
        target = check.vector(xyz, 3, "a position")
        if not (math.isfinite(yaw) and math.isfinite(speed) and speed > 0):
            raise InvalidArgumentError(f"move_ee needs a finite yaw and a positive speed, got {yaw}, {speed}")
        problem = self._reach_problem(target)
        if problem:
            raise UnreachableError(problem)
        self._check_errors()
        f = self._f
        base = self.calibration.to_base(target)
        factor = max(MIN_DYNAMICS, min(float(speed), self.max_speed))
        pose = f.Affine(base.tolist(), _down_quaternion(self._base_yaw(yaw)))
        motion = f.CartesianMotion(pose, f.ReferenceType.Absolute, relative_dynamics_factor=factor)
        self._call(lambda: self.robot.move(motion, asynchronous=True))
        self._join()
        reached = self.ee_position()
        miss = float(np.linalg.norm(reached - target))
        if miss > REACH_TOLERANCE:
            raise UnreachableError(
                f"the arm ended at {_r(reached)}, {miss * 100:.1f} cm from the target {_r(target)}: the "
                "target is at the edge of what the arm can reach; choose one closer to the robot"
            )

    def _join(self) -> None:
        deadline = time.monotonic() + MOTION_TIMEOUT_S
        while not self._call(lambda: self.robot.join_motion(JOIN_SLICE_S)):
            if self._stop.is_set():
                # stop() may have landed between the check before this motion and its start, and
                # then stopped nothing: stop this motion too
                self._call(self.robot.stop)
                self._settle_preempted()
                self._check_stop()
            if time.monotonic() > deadline:
                self._call(self.robot.stop)
                self._settle_preempted()
                raise UnreachableError(f"the motion did not end within {MOTION_TIMEOUT_S} s and was stopped")
        self._check_stop()

    def _settle_preempted(self) -> None:
        """Wait for a stopped motion to end and swallow its "preempted" error, which franky would
        otherwise raise from the next motion."""
        with contextlib.suppress(Exception):
            self.robot.join_motion(1.0)

    def _reach_problem(self, target: np.ndarray) -> str | None:
        """Why the tool-centre point cannot go to `target` (table frame), or None."""
        if target[2] < self._workspace.table_z + MIN_TCP_HEIGHT:
            return f"{_r(target)} is at or below the table surface (z={self._workspace.table_z})"
        base = self.calibration.to_base(target)
        flange = base + np.array([0.0, 0.0, HAND_LENGTH])
        robot_xy = _r(self.calibration.to_table(np.array([0.0, 0.0, self.calibration.table_z]))[:2])
        distance = float(np.linalg.norm(flange - SHOULDER))
        if distance > REACH_M:
            return (
                f"{_r(target)} is out of the Franka's reach ({distance:.2f} m from its shoulder, it reaches "
                f"{REACH_M} m): choose a target closer to the robot, which stands at {robot_xy}"
            )
        if float(np.hypot(base[0], base[1])) < MIN_RADIUS_M:
            return (
                f"{_r(target)} is too close to the robot's own base (at {robot_xy}); keep at least "
                f"{MIN_RADIUS_M} m away from it"
            )
        return None

    def _base_yaw(self, yaw: float) -> float:
        """The hand's rotation about the base's z axis for a table-frame gripper `yaw`. Capstan's yaw 0
        closes the fingers along the table's x axis; the Franka hand pointing down unturned closes
        them along the base's y axis, a quarter turn further. A parallel gripper is the same turned
        half a turn, so take the rotation nearest the unturned hand (least wrist travel)."""
        return math.remainder(self.calibration.yaw_to_base(yaw) + math.pi / 2, math.pi)

    # -- the hand ---------------------------------------------------------------------------------
    def set_gripper(self, closed: bool) -> bool:
        self._check_stop()
        if closed:
            force = min(self.grasp_force_n, self.max_force_n)
            # a target width of 0 with a wide tolerance: whatever the fingers close on counts; the
            # width they stop at says whether something is between them
            width_hint = float(self._call(lambda: self.gripper.max_width))
            future = self._call(lambda: self.gripper.grasp_async(0.0, GRASP_SPEED, force, 0.005, width_hint))
            self._await(future)
            self._closed = True
            width = float(self._call(lambda: self.gripper.width))
            self.scene.closed(self.ee_position(), width)
            return width >= HELD_WIDTH_MIN
        future = self._call(lambda: self.gripper.move_async(self.gripper.max_width, OPEN_SPEED))
        self._await(future)
        self._closed = False
        self.scene.opened(self.ee_position())
        return False

    def _await(self, future: Any) -> None:
        deadline = time.monotonic() + MOTION_TIMEOUT_S
        while not self._call(lambda: future.wait(JOIN_SLICE_S)):
            if self._stop.is_set():
                with contextlib.suppress(Exception):  # as in _join: stop what stop() may have missed
                    self.gripper.stop()
                self._check_stop()
            if time.monotonic() > deadline:  # a stuck gripper is stopped, not left trying
                with contextlib.suppress(Exception):
                    self.gripper.stop()
                raise GraspError(f"the gripper did not finish within {MOTION_TIMEOUT_S} s")
        self._check_stop()
        if not self._call(future.get):
            raise GraspError("the gripper could not finish its motion; check that nothing blocks the fingers")

    def gripper_state(self) -> GripperStatus:
        width = float(self._call(lambda: self.gripper.width))
        max_width = float(self._call(lambda: self.gripper.max_width))
        return {
            "open": not self._closed and width >= max_width - OPEN_SLACK,
            "width": width,
            "holding": self.scene.holding,
        }

    # -- time, e-stop and recovery ----------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        self._check_stop()
        if not (math.isfinite(seconds) and seconds >= 0):
            raise InvalidArgumentError(f"wait needs a finite, non-negative number of seconds, got {seconds}")
        if self._stop.wait(seconds):
            self._check_stop()

    def stop(self) -> None:
        """The e-stop, from any thread: set the flag, then preempt the arm and the hand at once."""
        self._stop.set()
        try:
            self.robot.stop()
        except Exception as exc:  # noqa: BLE001 - any failure to stop must be reported, not lost
            raise RobotUnavailableError(
                f"franky could not stop the arm ({type(exc).__name__}: {exc}); use the robot's hardware "
                "emergency stop"
            ) from None
        # the hand may be idle, and libfranka then reports that nothing ran: not a failure
        with contextlib.suppress(Exception):
            self.gripper.stop()

    def resume(self) -> None:
        self._settle_preempted()
        self._stop.clear()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def recover(self) -> None:
        """Clear the robot's error state after a reflex (only when the operator asks)."""
        if not self._call(self.robot.recover_from_errors):
            raise RobotUnavailableError(
                "the Franka did not recover from its error; check it in Desk (a pressed user stop, a "
                "collision that persists) and try again"
            )

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise RobotStoppedError("the robot was stopped (e-stop); no further motion until resume()")

    def _check_errors(self) -> None:
        if self._call(lambda: self.robot.has_errors):
            raise RobotUnavailableError(
                "the Franka is in an error state after a reflex; it moves again once the operator "
                "recovers it (POST /v1/robot/recover)"
            )

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one franky call; its exceptions become primitive errors the model can act on."""
        try:
            return fn()
        except PrimitiveError:
            raise
        except Exception as exc:  # noqa: BLE001 - franky's exceptions share no base class but Exception
            raise self._translate(exc) from None

    def _translate(self, exc: Exception) -> PrimitiveError:
        f, name, text = self._f, type(exc).__name__, str(exc)
        if self._stop.is_set():
            return RobotStoppedError("the robot was stopped (e-stop) during the motion; no further motion")
        if isinstance(exc, f.ControlException):
            cause = (
                "a joint or Cartesian limit"
                if "limit" in text or "violation" in text
                else "a collision or an unexpected force"
            )
            return UnreachableError(
                f"the arm stopped on a reflex ({cause}: {text}); the target or the way to it is out of its "
                "limits or blocked. The robot stays stopped until the operator recovers it"
            )
        if isinstance(exc, f.GripperException):
            return GraspError(f"the gripper failed ({text}); open it and try again")
        if isinstance(exc, (f.NetworkException, f.ProtocolException, f.IncompatibleVersionException)):
            return RobotUnavailableError(f"lost the Franka at {self.host} ({name}: {text})")
        if isinstance(exc, f.CommandException):
            return RobotUnavailableError(
                f"the Franka refused the command ({text}); it may be in an error state or its user stop "
                "pressed: the operator must release it and recover it"
            )
        if isinstance(exc, f.Exception):
            return RobotUnavailableError(f"the Franka failed: {name}: {text}")
        raise exc

    def close(self) -> None:
        self._stop.set()
        for halt in (self.robot.stop, self.gripper.stop):
            with contextlib.suppress(Exception):  # closing must not fail on a robot already gone
                halt()


def _down_quaternion(yaw: float) -> list[float]:
    """[qx, qy, qz, qw] of the hand pointing down (half a turn about x), turned by `yaw` about z."""
    return [math.cos(yaw / 2), math.sin(yaw / 2), 0.0, 0.0]


def _limit(value: float, name: str, ceiling: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= ceiling):
        raise ValueError(f"{name} must be a number in (0, {ceiling}], got {value!r}")
    return float(value)


def _r(p) -> list[float]:
    return [round(float(v), 3) for v in p]
