"""Where the table is in the robot's base frame: the one measured fact a real robot needs.

Capstan speaks the table frame (docs/CONTRACTS.md "Coordinates": +x right, +y away from the robot,
+z up from the table surface); franky speaks the robot's base frame. A Calibration is the rigid
transform between them: the table frame rotated by `yaw` about z, then shifted by `translation`.
The table surface is the table frame's z = 0, so `table_z` (its height in the base frame) is the
translation's z.

The default matches the simulated table (capstan.sim.scene.WORKSPACE) with the robot in front of
it at the origin, looking along the table's +y: base_x = table_y, base_y = -table_x, z the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capstan.primitives.backend import Workspace

# The simulated table's workspace (capstan.sim.scene.WORKSPACE; a test holds them equal): the
# franka layer sits beside sim, so it may not import it.
TABLE_WORKSPACE = Workspace(x=(-0.25, 0.25), y=(0.30, 0.70), table_z=0.0)
_MAX_OFFSET_M = 3.0  # a table further than this from the robot's base is a typo, not a calibration


class CalibrationError(ValueError):
    """A calibration file or dict is unusable; the message says what to fix."""


@dataclass(frozen=True)
class Calibration:
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # table origin in the base frame, m
    yaw: float = -math.pi / 2  # rotation of the table frame about the base's z axis, rad

    def __post_init__(self):
        values = (*self.translation, self.yaw)
        if len(self.translation) != 3 or not all(math.isfinite(v) for v in values):
            raise CalibrationError(f"calibration needs a finite translation [x, y, z] and yaw, got {values}")
        if max(abs(v) for v in self.translation) > _MAX_OFFSET_M:
            raise CalibrationError(
                f"calibration translation {list(self.translation)} puts the table more than "
                f"{_MAX_OFFSET_M} m from the robot; translations are in metres"
            )

    @property
    def table_z(self) -> float:
        """Height of the table surface in the base frame."""
        return float(self.translation[2])

    def _rotation(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_base(self, xyz) -> np.ndarray:
        """A table-frame point in the base frame."""
        return self._rotation() @ np.asarray(xyz, dtype=float).reshape(3) + np.asarray(self.translation)

    def to_table(self, xyz) -> np.ndarray:
        """A base-frame point in the table frame."""
        return self._rotation().T @ (np.asarray(xyz, dtype=float).reshape(3) - np.asarray(self.translation))

    def yaw_to_base(self, yaw: float) -> float:
        """A rotation about z in the table frame, as one in the base frame."""
        return float(yaw) + self.yaw

    def to_dict(self) -> dict:
        return {"translation": [float(v) for v in self.translation], "yaw": float(self.yaw)}

    @classmethod
    def from_dict(cls, data: object) -> Calibration:
        """{"translation": [x, y, z], "yaw": rad}; both optional (defaults above)."""
        if not isinstance(data, dict):
            raise CalibrationError(f"a calibration is a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"translation", "yaw"}
        if unknown:
            raise CalibrationError(
                f"unknown calibration keys {sorted(map(str, unknown))}; allowed: translation [x, y, z] "
                "(metres, the table origin in the robot's base frame) and yaw (radians)"
            )
        default = cls()
        raw_t = data.get("translation", list(default.translation))
        raw_yaw = data.get("yaw", default.yaw)
        if not isinstance(raw_t, list) or len(raw_t) != 3 or not all(_is_number(v) for v in raw_t):
            raise CalibrationError(
                f"calibration 'translation' must be [x, y, z] in metres, got {raw_t!r:.80}"
            )
        if not _is_number(raw_yaw):
            raise CalibrationError(f"calibration 'yaw' must be a number of radians, got {raw_yaw!r:.40}")
        return cls(translation=(float(raw_t[0]), float(raw_t[1]), float(raw_t[2])), yaw=float(raw_yaw))

    @classmethod
    def from_file(cls, path: str | Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise CalibrationError(f"cannot read the calibration file {str(path)!r}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"calibration file {str(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
