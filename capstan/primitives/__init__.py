"""The policy-facing robot API, the RobotBackend interface it runs on, perception and errors.

from capstan.primitives import PolicyAPI
api = PolicyAPI(backend, perception="truth" | "camera", on_event=callback)
fns = api.functions()     # {name: callable} for policy code
api.describe()            # signatures + docstrings for prompts
"""

from __future__ import annotations

import importlib

__all__ = [  # ERROR_TYPES lives in primitives.errors
    "CameraImage",
    "CameraPerception",
    "FakeBackend",
    "GraspError",
    "InvalidArgumentError",
    "NotVisibleError",
    "OutOfWorkspaceError",
    "Perception",
    "PolicyAPI",
    "PrimitiveError",
    "RobotBackend",
    "RobotStoppedError",
    "TruthPerception",
    "UnknownObjectError",
    "UnreachableError",
    "Workspace",
]

_LAZY = {
    "CameraImage": "capstan.primitives.backend",
    "RobotBackend": "capstan.primitives.backend",
    "Workspace": "capstan.primitives.backend",
    "PolicyAPI": "capstan.primitives.api",
    "FakeBackend": "capstan.primitives.fake",
    "CameraPerception": "capstan.primitives.perception",
    "Perception": "capstan.primitives.perception",
    "TruthPerception": "capstan.primitives.perception",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in __all__ or name == "ERROR_TYPES":
        return getattr(importlib.import_module("capstan.primitives.errors"), name)
    raise AttributeError(f"module 'primitives' has no attribute {name!r}")
