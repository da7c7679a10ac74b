"""The robot backend interface: the only thing primitives talk to.

The PyBullet world (sim/) implements it; a real-robot adapter implements the same verbs.
Motion verbs block until the motion ends (or the backend is stopped). Coordinates are metres
in the table frame: seen from the top-down camera +x is right, +y is top (far from the robot),
+z is up from the table surface.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


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
    """What a robot must offer so that every primitive works on it."""

    # True when the scene and the arm change only through this backend's own verbs (a simulator
    # that steps only inside them): then two reads with no command between them give the same
    # answer, and the sandbox may answer a repeated read without asking. A real robot is False.
    changes_only_when_commanded: bool = False

    @abc.abstractmethod
    def workspace(self) -> Workspace: ...

    @abc.abstractmethod
    def state(self) -> dict:
        """The scene state in the scene contract (docs/CONTRACTS.md), plain JSON."""

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
    def gripper_state(self) -> dict:
        """{"open": bool, "width": float, "holding": str | None}"""

    @abc.abstractmethod
    def wait(self, seconds: float) -> None:
        """Let `seconds` of (simulated or real) time pass."""

    @abc.abstractmethod
    def stop(self) -> None:
        """E-stop: halt at once; later motion calls raise RobotStoppedError until `resume()`."""

    @abc.abstractmethod
    def resume(self) -> None: ...

    def close(self) -> None:
        pass
