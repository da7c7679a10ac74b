"""The scene state: what `RobotBackend.state()` returns, the HTTP API shows and lmp reads.

It is plain JSON typed with TypedDicts, so `state["objects"][name]["position"]` stays a dict read
that pyright checks, and the service's pydantic schemas describe and validate the same shape
(docs/CONTRACTS.md "Scene state" shows an example). Every key is required: every backend sends
all of them. `state_problems` checks a value against these types at run time (a remote robot's
answer; the tests run it over every backend's state).
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin, get_type_hints

# before Python 3.12 pydantic (the service's schemas) accepts only typing_extensions' TypedDict
from typing_extensions import TypedDict, is_typeddict


class ObjectState(TypedDict):
    kind: str  # "block" or "bowl"
    color: str
    position: list[float]  # [x, y, z] metres in the table frame (docs/CONTRACTS.md)
    orientation: list[float]  # quaternion [qx, qy, qz, qw]


class WorkspaceBounds(TypedDict):
    x: list[float]  # [min, max]
    y: list[float]  # [min, max]
    table_z: float


class GripperStatus(TypedDict):
    """What `RobotBackend.gripper_state()` returns."""

    open: bool
    width: float  # metres between the fingers
    holding: str | None  # the name of the object held


# Declared whole rather than as a subclass of GripperStatus: pydantic writes a TypedDict's keys in
# the order they are declared, and the backends send "position" first.
class GripperState(TypedDict):
    """The gripper: its tool-centre point and what `gripper_state()` says."""

    position: list[float]  # tool-centre point [x, y, z]
    open: bool
    width: float
    holding: str | None


class SceneState(TypedDict):
    """The scene state (docs/CONTRACTS.md "Scene state"): objects, workspace, gripper, robot."""

    objects: dict[str, ObjectState]
    workspace: WorkspaceBounds
    named_positions: dict[str, list[float]]  # "top left corner", ..., "middle": [x, y]
    gripper: GripperState
    robot: str
    seed: int
    time_s: float


def state_problems(value: object, *, undeclared: bool = True) -> list[str]:
    """Where `value` departs from SceneState: a required key missing, a value of the wrong JSON
    type and, when `undeclared`, a key the model does not declare. Empty when it conforms."""
    return _problems(value, SceneState, "state", undeclared)


_NONE = type(None)
_SCALARS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),
    _NONE: (_NONE,),
}


def _problems(value: object, tp: Any, where: str, undeclared: bool) -> list[str]:
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not an object"]
        hints = get_type_hints(tp)
        out = [f"{where} lacks {k!r}" for k in sorted(tp.__required_keys__) if k not in value]
        out += [f"{where} has the undeclared key {k!r}" for k in value if undeclared and k not in hints]
        for k, v in value.items():
            if k in hints:
                out += _problems(v, hints[k], f"{where}[{k!r}]", undeclared)
        return out
    origin, args = get_origin(tp), get_args(tp)
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not an object"]
        return [p for k, v in value.items() for p in _problems(v, args[1], f"{where}[{k!r}]", undeclared)]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where} is {type(value).__name__}, not a list"]
        return [p for i, v in enumerate(value) for p in _problems(v, args[0], f"{where}[{i}]", undeclared)]
    if origin in (Union, types.UnionType):
        if any(not _problems(value, a, where, undeclared) for a in args):
            return []
        return [f"{where} is {type(value).__name__}, not {' or '.join(_name(a) for a in args)}"]
    ok = _SCALARS[tp]
    if isinstance(value, ok) and not (isinstance(value, bool) and bool not in ok):
        return []
    return [f"{where} is {type(value).__name__}, not {_name(tp)}"]


def _name(tp: Any) -> str:
    return "null" if tp is _NONE else getattr(tp, "__name__", str(tp))
