"""The policy-facing robot API, the RobotBackend interface it runs on, perception and errors.

from capstan.primitives import PolicyAPI
api = PolicyAPI(backend, perception="truth" | "camera", on_event=callback)
fns = api.functions()     # {name: callable} for policy code
api.describe()            # signatures + docstrings for prompts
backend.state()           # a SceneState: plain JSON, typed (primitives.scene_state)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [  # ERROR_TYPES lives in primitives.errors
    "CameraImage",
    "CameraPerception",
    "Envelope",
    "EnvelopeError",
    "EnvelopedBackend",
    "ErrorKind",
    "FakeBackend",
    "GraspError",
    "GripperState",
    "GripperStatus",
    "InvalidArgumentError",
    "NotVisibleError",
    "ObjectState",
    "OutOfWorkspaceError",
    "Perception",
    "PolicyAPI",
    "PrimitiveError",
    "RobotBackend",
    "RobotStoppedError",
    "RunError",
    "RunStatus",
    "SceneState",
    "TruthPerception",
    "UnknownObjectError",
    "UnreachableError",
    "Workspace",
    "WorkspaceBounds",
]

_LAZY = {
    "CameraImage": "capstan.primitives.backend",
    "RobotBackend": "capstan.primitives.backend",
    "Workspace": "capstan.primitives.backend",
    "PolicyAPI": "capstan.primitives.api",
    "Envelope": "capstan.primitives.envelope",
    "EnvelopedBackend": "capstan.primitives.envelope",
    "FakeBackend": "capstan.primitives.fake",
    "CameraPerception": "capstan.primitives.perception",
    "Perception": "capstan.primitives.perception",
    "TruthPerception": "capstan.primitives.perception",
    "ErrorKind": "capstan.primitives.outcome",
    "RunError": "capstan.primitives.outcome",
    "RunStatus": "capstan.primitives.outcome",
    **{
        n: "capstan.primitives.scene_state"
        for n in ("GripperState", "GripperStatus", "ObjectState", "SceneState", "WorkspaceBounds")
    },
}

if TYPE_CHECKING:  # pragma: no cover - what type checkers and editors see
    from capstan.primitives.api import PolicyAPI
    from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
    from capstan.primitives.envelope import Envelope, EnvelopedBackend
    from capstan.primitives.errors import (
        EnvelopeError,
        GraspError,
        InvalidArgumentError,
        NotVisibleError,
        OutOfWorkspaceError,
        PrimitiveError,
        RobotStoppedError,
        UnknownObjectError,
        UnreachableError,
    )
    from capstan.primitives.fake import FakeBackend
    from capstan.primitives.outcome import ErrorKind, RunError, RunStatus
    from capstan.primitives.perception import CameraPerception, Perception, TruthPerception
    from capstan.primitives.scene_state import (
        GripperState,
        GripperStatus,
        ObjectState,
        SceneState,
        WorkspaceBounds,
    )


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in __all__ or name == "ERROR_TYPES":
        return getattr(importlib.import_module("capstan.primitives.errors"), name)
    raise AttributeError(f"module 'primitives' has no attribute {name!r}")
