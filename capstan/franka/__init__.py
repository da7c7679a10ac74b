"""A Franka robot through franky (libfranka): the backend, its calibration and franky-sim.

from capstan.franka import Calibration, FrankaBackend, FrankySim
backend = FrankaBackend.connect("172.16.0.2", calibration=Calibration.from_file("table.json"))

franky is imported only when a robot is used; without it the error says `pip install 'capstan[franka]'`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["Calibration", "CalibrationError", "FrankaBackend", "FrankyMissingError", "FrankySim"]

_LAZY = {
    "Calibration": "capstan.franka.calibration",
    "CalibrationError": "capstan.franka.calibration",
    "FrankaBackend": "capstan.franka.backend",
    "FrankyMissingError": "capstan.franka._franky",
    "FrankySim": "capstan.franka.simulator",
}

if TYPE_CHECKING:  # pragma: no cover - what type checkers and editors see
    from capstan.franka._franky import FrankyMissingError
    from capstan.franka.backend import FrankaBackend
    from capstan.franka.calibration import Calibration, CalibrationError
    from capstan.franka.simulator import FrankySim


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'capstan.franka' has no attribute {name!r}")
