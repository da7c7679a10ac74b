"""Errors that primitives raise. Policy code can catch them; the trace records them.

    PrimitiveError                 base: a primitive refused or failed, the world is intact
    ├── InvalidArgumentError       wrong type, NaN/inf, wrong shape
    ├── UnknownObjectError         no object by that name (message lists the closest names)
    ├── OutOfWorkspaceError        target outside the table workspace (names the nearest point inside)
    ├── PlacementError             a place target on a bowl's rim or partly on another object
                                   (names the nearest free spot)
    ├── UnreachableError           inside the workspace but the arm cannot get there
    ├── GraspError                 the gripper closed on nothing / dropped the object
    ├── NotVisibleError            the camera cannot see that object right now
    ├── EnvelopeError              a motion would break the robot's safety envelope (workspace box,
                                   height band, keep-out zone, motion count, run time); names the
                                   limit, the allowed range and, for a position, the nearest allowed point
    ├── RobotStoppedError          the run was cancelled (e-stop); no further motion
    └── RobotUnavailableError      a remote robot cannot be reached or answered garbage

All of them "go back to the model as feedback": they describe a mistake in the program,
not a fault of the service.
"""

from __future__ import annotations

import re

# How OutOfWorkspaceError and PlacementError name a place target that would work; feedback to the
# model quotes it (`suggested_point`).
_SUGGESTED_POINT = re.compile(r"the nearest (?:point inside|free spot) is \[([^\]]*)\]")


def suggested_point(message: str) -> list[float] | None:
    """The point an error's message names as the nearest one that would work, or None."""
    m = _SUGGESTED_POINT.search(message)
    if m is None:
        return None
    try:
        return [float(v) for v in m.group(1).split(",")]
    except ValueError:
        return None


class PrimitiveError(Exception):
    """A primitive refused its input or could not complete. The world is left consistent."""

    kind = "primitive"


class InvalidArgumentError(PrimitiveError, ValueError):
    pass


class UnknownObjectError(PrimitiveError, KeyError):
    def __init__(self, name: object, suggestions: list[str] | None = None):
        self.name = name
        self.suggestions = list(suggestions or [])
        hint = f"; closest known names: {', '.join(map(repr, self.suggestions))}" if self.suggestions else ""
        super().__init__(f"unknown object {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class OutOfWorkspaceError(PrimitiveError):
    pass


class PlacementError(PrimitiveError):
    pass


class UnreachableError(PrimitiveError):
    pass


class GraspError(PrimitiveError):
    pass


class NotVisibleError(PrimitiveError):
    pass


class EnvelopeError(PrimitiveError):
    """Refused before the robot moved: the motion breaks a limit of the safety envelope
    (primitives.envelope) that an operator set for this robot."""


class RobotStoppedError(PrimitiveError):
    pass


class RobotUnavailableError(PrimitiveError):
    """The robot agent cannot be reached, timed out or sent something unusable
    (primitives.remote). Unlike the others this is not the program's mistake."""


ERROR_TYPES: dict[str, type[PrimitiveError]] = {
    cls.__name__: cls
    for cls in (
        PrimitiveError,
        InvalidArgumentError,
        UnknownObjectError,
        OutOfWorkspaceError,
        PlacementError,
        UnreachableError,
        GraspError,
        NotVisibleError,
        EnvelopeError,
        RobotStoppedError,
        RobotUnavailableError,
    )
}


def mirror_spec() -> dict[str, list[str | None]]:
    """{name: [parent error name or None, builtin base name or None]} in definition order: what the
    sandbox worker needs to rebuild same-named classes that policy code can catch."""
    spec: dict[str, list[str | None]] = {}
    for name, cls in ERROR_TYPES.items():
        parent = next((b.__name__ for b in cls.__bases__ if issubclass(b, PrimitiveError)), None)
        builtin = next((b.__name__ for b in cls.__bases__ if b in (ValueError, KeyError)), None)
        spec[name] = [parent, builtin]
    return spec
