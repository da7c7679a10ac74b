"""The robot backend interface: the only thing primitives talk to.

The PyBullet world (sim/) implements it; a real-robot adapter implements the same verbs.
Motion verbs block until the motion ends (or the backend is stopped). Coordinates are metres
in the table frame: seen from the top-down camera +x is right, +y is top (far from the robot),
+z is up from the table surface.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capstan.primitives.scene_state import GripperStatus, SceneState


@dataclass(frozen=True)
class Workspace:
    x: tuple[float, float]
    y: tuple[float, float]
    table_z: float

    def contains(self, xy, margin: float = 0.0) -> bool:
        x, y = float(xy[0]), float(xy[1])
        return self.x[0] - margin <= x <= self.x[1] + margin and self.y[0] - margin <= y <= self.y[1] + margin


@dataclass
class CameraImage:
    """One rendered view. `intrinsics` is 3x3, `extrinsics` the 4x4 world-from-camera pose
    (OpenCV convention: +z forward, +x right, +y down)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along the optical axis
    segmentation: np.ndarray | None  # (H, W) int32 object ids, -1 for background; None on a real camera
    intrinsics: np.ndarray
    extrinsics: np.ndarray
    id_to_name: dict[int, str] = field(default_factory=dict)


class RobotBackend(abc.ABC):
    """What a robot must offer so that every primitive works on it.

    Beyond the abstract verbs, a backend declares what else it can do with the class attributes
    below, and overrides the matching methods; callers ask the attribute, never probe for methods.
    The defaults here refuse, naming the capability that is missing.
    """

    # True when the scene and the arm change only through this backend's own verbs (a simulator
    # that steps only inside them): then two reads with no command between them give the same
    # answer, and the sandbox may answer a repeated read without asking. A real robot is False.
    changes_only_when_commanded: bool = False
    # snapshot() and restore(): undo, a repair starting from the scene its prompt showed, dry runs
    supports_snapshots: bool = False
    # start_recording() and stop_recording(): frames captured during motions (else one render per call)
    supports_recording: bool = False
    # place_objects(): put objects where a saved scene state had them (a session revived after a restart)
    supports_placing: bool = False
    # declare(): the operator says which objects are where (a robot with no perception of its own)
    supports_declaring: bool = False
    # recover(): clear the robot's error state (after a reflex) when the operator asks for it
    supports_recovery: bool = False
    # clear_watchdog(): lift the stop a lapsed heartbeat caused, once the operator checked the link
    supports_watchdog: bool = False

    @abc.abstractmethod
    def workspace(self) -> Workspace: ...

    @abc.abstractmethod
    def state(self) -> SceneState:
        """The scene state (primitives.scene_state; docs/CONTRACTS.md), plain JSON."""

    @abc.abstractmethod
    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage: ...

    @abc.abstractmethod
    def ee_position(self) -> np.ndarray:
        """Gripper tool-centre point [x, y, z]."""

    @abc.abstractmethod
    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        """Move the tool-centre point to `xyz` (gripper pointing down, rotated by `yaw`).
        Raises UnreachableError when no motion gets there."""

    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        """Whether move_ee(xyz, yaw) would get there (checked without moving). Backends that cannot
        tell answer True and let move_ee raise UnreachableError."""
        return True

    @abc.abstractmethod
    def set_gripper(self, closed: bool) -> bool:
        """Open or close the fingers; returns True when something is held afterwards."""

    @abc.abstractmethod
    def gripper_state(self) -> GripperStatus:
        """{"open": bool, "width": float, "holding": str | None}"""

    @abc.abstractmethod
    def wait(self, seconds: float) -> None:
        """Let `seconds` of (simulated or real) time pass."""

    @abc.abstractmethod
    def stop(self) -> None:
        """E-stop: halt at once; later motion calls raise RobotStoppedError until `resume()`."""

    @abc.abstractmethod
    def resume(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - an optional hook: a backend may hold nothing to release
        pass

    # -- safety limits (primitives.envelope); a backend without limits accepts everything --------
    def begin_run(self) -> None:  # noqa: B027 - optional: only a backend that limits a run resets anything
        """A program starts: limits counted per run (motions, run time) start again."""

    def apply_limits(self, max_speed: float, max_force_n: float) -> None:  # noqa: B027 - optional hook
        """Cap the robot's own speed factor (0, 1] and grasp force (N), where its controller can."""

    def check_path(self, points) -> None:  # noqa: B027 - optional: nothing to check without limits
        """Raise the error (EnvelopeError) that moving the tool point in straight lines through
        `points` ([[x, y, z], ...]) would raise for breaking this backend's limits, without moving:
        a primitive made of several motions asks before its first one."""

    # -- optional capabilities (see the class attributes) ----------------------------------------
    def snapshot(self) -> Any:
        """The whole world state, for restore(); opaque to callers."""
        raise self._missing("supports_snapshots", "snapshot the world")

    def restore(self, snap: Any) -> None:
        """Put the world back as it was when snapshot() returned `snap`."""
        raise self._missing("supports_snapshots", "restore a snapshot")

    def headless(self) -> contextlib.AbstractContextManager[None]:
        """Inside, motions capture no frames (a dry run is not part of the video). A backend that
        records nothing has nothing to switch off."""
        return contextlib.nullcontext()

    def start_recording(
        self,
        fps: float = 10.0,
        view: str = "angled",
        width: int = 320,
        height: int = 240,
        max_frames: int = 1000,
    ) -> None:
        """Capture an RGB frame every 1/fps seconds of motion, at most `max_frames`."""
        raise self._missing("supports_recording", "record frames")

    def stop_recording(self, skip_first: bool = False) -> list[np.ndarray]:
        """Stop capturing; the RGB frames (H, W, 3 uint8) taken since start_recording(), without
        the first (the one taken at the start) when `skip_first`."""
        raise self._missing("supports_recording", "record frames")

    def place_objects(self, poses: dict) -> None:
        """Put objects at {name: {"position", "orientation"}} and let them settle."""
        raise self._missing("supports_placing", "place objects")

    def declare(self, objects: object) -> None:
        """Replace the declared scene (primitives.declared.DeclaredScene.declare for the format)."""
        raise self._missing("supports_declaring", "take a declared scene")

    def recover(self) -> None:
        """Clear the robot's error state so it moves again; only ever on the operator's request."""
        raise self._missing("supports_recovery", "recover from errors")

    def clear_watchdog(self) -> None:
        """Lift the stop the robot's heartbeat watchdog made; only ever on the operator's request."""
        raise self._missing("supports_watchdog", "clear a watchdog stop")

    def _missing(self, flag: str, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} cannot {what}: it does not declare {flag}; check "
            f"backend.{flag} before calling"
        )
