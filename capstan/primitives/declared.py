"""A declared scene: the objects an operator says are on the table, for a robot with no camera.

A real robot without perception has no ground truth, so its operator declares each object
(kind, colour, position in the table frame) and the backend keeps that list true for what the
robot itself does: a grasp that closes on something takes the declared object between the
fingers, the held object moves with the gripper, and opening sets it down where it was let go
(on the table, on a block or in a bowl below it). Anything else that moves the objects (a person,
a slip) is invisible here; the operator declares the scene again. Any real-robot backend can use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from capstan.primitives.backend import Workspace
from capstan.primitives.errors import InvalidArgumentError
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_RADIUS, BOWL_WALL, COLORS, KINDS
from capstan.primitives.scene_state import ObjectState

MAX_DECLARED = 16  # as many objects as the simulated table takes
HELD_WIDTH_MIN = 0.005  # fingers closed tighter than this (m) hold nothing
GRASP_REACH = 0.035  # an object's centre this close to the fingers (horizontally, m) is the one grasped
GRASP_REACH_Z = 0.04  # ... and this close vertically
Z_ABOVE_TABLE_MAX = 0.30  # a declared object rests on the table or on something on it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")
_UPRIGHT = (0.0, 0.0, 0.0, 1.0)


@dataclass
class _Item:
    kind: str
    color: str
    position: np.ndarray  # [x, y, z]: a block's centre, a bowl's base centre (as perception reports)
    orientation: tuple[float, float, float, float]

    def as_state(self, position: np.ndarray | None = None) -> ObjectState:
        pos = self.position if position is None else position
        return {
            "kind": self.kind,
            "color": self.color,
            "position": [float(v) for v in pos],
            "orientation": [float(v) for v in self.orientation],
        }


class DeclaredScene:
    """The declared objects and which one the gripper holds. Not thread-safe: the backend that
    owns it runs one verb at a time."""

    def __init__(self, workspace: Workspace, objects: object = None):
        self.workspace = workspace
        self._items: dict[str, _Item] = {}
        self.holding: str | None = None
        self._grip_offset = np.zeros(3)  # held object's position minus the tool-centre point
        if objects is not None:
            self.declare(objects)

    # -- declaring ------------------------------------------------------------------------------
    def declare(self, objects: object) -> None:
        """Replace the scene with `objects`: {name: {"kind", "color", "position", "orientation"}}
        or a list of such dicts each with a "name". "kind" and "color" may be left out when the name
        reads "<color> <kind>"; "position" is [x, y] (resting on the table) or [x, y, z] in the table
        frame; "orientation" a quaternion [qx, qy, qz, qw] (default upright). Nothing changes when any
        entry is bad: InvalidArgumentError names it and says how to fix it."""
        entries = _entries(objects)
        if len(entries) > MAX_DECLARED:
            raise InvalidArgumentError(f"too many objects ({len(entries)}); declare at most {MAX_DECLARED}")
        items: dict[str, _Item] = {}
        for name, spec in entries:
            if name in items:
                raise InvalidArgumentError(f"duplicate object {name!r}: each name may be declared once")
            items[name] = self._item(name, spec)
        self._items, self.holding = items, None

    def _item(self, name: str, spec: object) -> _Item:
        if not isinstance(spec, dict):
            raise InvalidArgumentError(f"object {name!r} must be described by a JSON object")
        unknown = set(spec) - {"name", "kind", "color", "position", "orientation"}
        if unknown:
            raise InvalidArgumentError(
                f"object {name!r} has unknown keys {sorted(map(str, unknown))}; allowed: kind, color, "
                "position, orientation"
            )
        words = name.split()
        kind = spec.get("kind", words[-1] if words and words[-1] in KINDS else None)
        color = spec.get("color", words[0] if len(words) == 2 and words[0] in COLORS else None)
        if kind not in KINDS:
            raise InvalidArgumentError(
                f"object {name!r} needs a kind, one of {list(KINDS)}; got {kind!r:.40}"
            )
        if color not in COLORS:
            raise InvalidArgumentError(
                f"object {name!r} needs a colour, one of {', '.join(COLORS)}; got {color!r:.40}"
            )
        position = self._position(name, kind, spec.get("position"))
        orientation = _orientation(name, spec.get("orientation", list(_UPRIGHT)))
        return _Item(kind, color, position, orientation)

    def _position(self, name: str, kind: str, raw: object) -> np.ndarray:
        if not isinstance(raw, (list, tuple)) or len(raw) not in (2, 3) or not all(map(_is_number, raw)):
            raise InvalidArgumentError(
                f"position of {name!r} must be [x, y] or [x, y, z] in metres (table frame), got {raw!r:.80}"
            )
        values = [float(v) for v in raw]
        if not all(map(math.isfinite, values)):
            raise InvalidArgumentError(f"position of {name!r} must be finite, got {values}")
        ws = self.workspace
        if not ws.contains(values[:2]):
            raise InvalidArgumentError(
                f"position {values[:2]} of {name!r} is outside the workspace "
                f"x in {list(ws.x)}, y in {list(ws.y)}"
            )
        z = values[2] if len(values) == 3 else ws.table_z + _rest_height(kind)
        if not ws.table_z - 0.01 <= z <= ws.table_z + Z_ABOVE_TABLE_MAX:
            raise InvalidArgumentError(
                f"height {z} of {name!r} is not on the table (table at z={ws.table_z}; a block's z is its "
                "centre, a bowl's its base)"
            )
        return np.array([values[0], values[1], z])

    # -- reading --------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._items)

    def objects(self, tcp) -> dict[str, ObjectState]:
        """Every object as scene state; a held one where the gripper (tool-centre point `tcp`) has it."""
        out: dict[str, ObjectState] = {}
        for name, item in self._items.items():
            held_at = np.asarray(tcp, dtype=float) + self._grip_offset if name == self.holding else None
            out[name] = item.as_state(held_at)
        return out

    # -- the robot's own changes ----------------------------------------------------------------
    def closed(self, tcp, width: float) -> str | None:
        """The fingers closed at `tcp` and stopped `width` apart: which declared object they hold
        (None when they closed on nothing, or on something nobody declared)."""
        self.holding = None
        if width < HELD_WIDTH_MIN:
            return None
        p = np.asarray(tcp, dtype=float)
        near = [
            (float(np.linalg.norm(item.position - p)), name)  # the closest, e.g. the top of a stack
            for name, item in self._items.items()
            if float(np.hypot(*(item.position[:2] - p[:2]))) <= GRASP_REACH
            and abs(item.position[2] - p[2]) <= GRASP_REACH_Z
        ]
        if near:
            self.holding = min(near)[1]
            self._grip_offset = self._items[self.holding].position - p
        return self.holding

    def opened(self, tcp) -> None:
        """The fingers opened at `tcp`: a held object drops onto what lies below it."""
        name, self.holding = self.holding, None
        if name is None:
            return
        item = self._items[name]
        xy = (np.asarray(tcp, dtype=float) + self._grip_offset)[:2]
        support = self.workspace.table_z
        for other_name, other in self._items.items():
            if other_name == name:
                continue
            d = float(np.hypot(*(other.position[:2] - xy)))
            if other.kind == "bowl" and d < BOWL_RADIUS - BLOCK_SIZE / 2:
                support = max(support, float(other.position[2]) + BOWL_WALL)
            elif other.kind == "block" and d < BLOCK_SIZE * 0.71:
                support = max(support, float(other.position[2]) + BLOCK_SIZE / 2)
        item.position = np.array([xy[0], xy[1], support + _rest_height(item.kind)])
        self._grip_offset = np.zeros(3)


def _rest_height(kind: str) -> float:
    """How far above its support an object's reported position is: a block's centre, a bowl's base."""
    return BLOCK_SIZE / 2 if kind == "block" else 0.0


def _entries(objects: object) -> list[tuple[str, object]]:
    if isinstance(objects, dict):
        pairs = list(objects.items())
    elif isinstance(objects, list):
        pairs = []
        for entry in objects:
            if not isinstance(entry, dict) or "name" not in entry:
                raise InvalidArgumentError('each declared object in a list needs a "name"')
            pairs.append((entry["name"], entry))
    else:
        raise InvalidArgumentError(
            "declare objects as {name: {kind, color, position}} or a list of such objects with a name, "
            f"got {type(objects).__name__}"
        )
    for name, _ in pairs:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgumentError(
                f"object name {name!r:.60} must be 1-40 letters, digits, spaces, '_' or '-', like 'red block'"
            )
    return pairs


def _orientation(name: str, raw: object) -> tuple[float, float, float, float]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 4 or not all(map(_is_number, raw)):
        raise InvalidArgumentError(f"orientation of {name!r} must be a quaternion [qx, qy, qz, qw]")
    q = np.array([float(v) for v in raw])
    norm = float(np.linalg.norm(q))
    if not math.isfinite(norm) or norm < 0.5:
        raise InvalidArgumentError(f"orientation of {name!r} must be a unit quaternion, got {q.tolist()}")
    x, y, z, w = (float(v) for v in q / norm)
    return (x, y, z, w)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
