"""Argument checks shared by every primitive. Each raises a typed PrimitiveError that names
the bad value and how to fix it; nothing here touches the robot."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sized

import numpy as np

from capstan.primitives.backend import Workspace
from capstan.primitives.errors import InvalidArgumentError, OutOfWorkspaceError, UnknownObjectError

MAX_NAME_LEN = 200
MAX_SAY_LEN = 2000
MAX_WAIT_S = 30.0
MAX_STEP_M = 0.10  # largest move_gripper_by delta
Z_MIN, Z_MAX = 0.005, 0.40  # allowed gripper heights above the table


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name(value: object, known: Iterable[str], what: str = "object") -> str:
    """A known object name; unknown names get the closest known ones as suggestions."""
    if isinstance(value, np.str_):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{what} must be a name string like 'red block', got {type(value).__name__} {_short(value)}"
        )
    if len(value) > MAX_NAME_LEN:
        raise InvalidArgumentError(
            f"{what} name is {len(value)} characters long; names are short like 'red block'"
        )
    known = list(known)
    if value not in known:
        raise UnknownObjectError(
            value, difflib.get_close_matches(value.strip().lower(), known, n=3, cutoff=0.4)
        )
    return value


def number(value: object, what: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{what} must be a number, got {type(value).__name__} {_short(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float: no place or duration is that far off
        raise InvalidArgumentError(f"{what} must be finite, got an integer too large for a float") from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{what} must be finite, got {v}")
    if not lo <= v <= hi:
        raise InvalidArgumentError(f"{what} must be between {lo} and {hi}, got {v}")
    return v


def vector(value: object, n: int, what: str) -> np.ndarray:
    """A length-n float vector from a list, tuple or array; rejects huge, nested or non-finite input."""
    if (
        isinstance(value, (str, bytes, dict, set))
        or not isinstance(value, Sized)
        or not isinstance(value, Iterable)
    ):
        raise InvalidArgumentError(
            f"{what} must be a list of {n} numbers, got {type(value).__name__} {_short(value)}"
        )
    if len(value) != n:  # checked before converting, so a list of 10**7 numbers costs nothing
        raise InvalidArgumentError(f"{what} must have {n} numbers, got {len(value)}")
    if isinstance(value, np.ndarray) and value.shape != (n,):
        raise InvalidArgumentError(f"{what} must have shape ({n},), got {value.shape}")
    return np.array([number(v, f"{what}[{i}]") for i, v in enumerate(value)], dtype=float)


def xy_in_workspace(value: object, ws: Workspace, what: str = "position") -> np.ndarray:
    xy = vector(value, 2, what)
    if not ws.contains(xy, margin=1e-9):
        inside = np.clip(xy, [ws.x[0], ws.y[0]], [ws.x[1], ws.y[1]])
        raise OutOfWorkspaceError(
            f"{what} {np.round(xy, 3).tolist()} is outside the workspace x in {list(ws.x)}, y in "
            f"{list(ws.y)}; "
            f"the nearest point inside is {np.round(inside, 3).tolist()}"
        )
    return xy


def xyz_in_workspace(
    value: object, ws: Workspace, what: str = "position", margin: float = 0.05
) -> np.ndarray:
    xyz = vector(value, 3, what)
    if not ws.contains(xyz[:2], margin=margin):
        raise OutOfWorkspaceError(
            f"{what} {np.round(xyz, 3).tolist()} is outside the workspace x in {list(ws.x)}, y in "
            f"{list(ws.y)} "
            f"(plus a {margin} m margin)"
        )
    z = xyz[2] - ws.table_z
    if not Z_MIN <= z <= Z_MAX:
        raise OutOfWorkspaceError(
            f"{what} height {xyz[2]:.3f} m is outside {Z_MIN}..{Z_MAX} m above the table "
            f"(table_z={ws.table_z})"
        )
    return xyz


def text(value: object, limit: int = MAX_SAY_LEN) -> str:
    """A string to say (numbers are accepted and formatted), cut to `limit` characters."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = repr(float(value)) if isinstance(value, (float, np.floating)) else _short(int(value), limit)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"say() takes a string, got {type(value).__name__}")
    return value if len(value) <= limit else value[: limit - 1] + "…"
