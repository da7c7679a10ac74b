"""PolicyAPI: the functions generated policy code calls (docs/CONTRACTS.md "Policy API").

Every function validates its arguments, runs on a RobotBackend, returns plain data, and reports
itself through `on_event("primitive_call", {...})`. Errors are PrimitiveError subclasses.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Iterator

import numpy as np

from capstan.primitives import motions, placement
from capstan.primitives import validation as check
from capstan.primitives.backend import RobotBackend
from capstan.primitives.errors import (
    GraspError,
    InvalidArgumentError,
    NotVisibleError,
    OutOfWorkspaceError,
    PrimitiveError,
    UnknownObjectError,
)
from capstan.primitives.geometry import (
    CORNER_NAMES,
    POSITION_NAMES,
    SIDE_NAMES,
    named_positions,
    nearest_name,
)
from capstan.primitives.jsondata import plain
from capstan.primitives.perception import Observation, make_perception
from capstan.primitives.place_names import mentions_place, position_name

EventSink = Callable[[str, dict], None]

# The scene reads; between two commands they answer the same on a backend that changes only
# when commanded (see PolicyAPI.pure_functions), as do the two gripper reads in READ_NAMES.
SCENE_READS = (
    "get_obj_names",
    "get_obj_pos",
    "get_obj_xyz",
    "get_bbox",
    "get_color",
    "is_obj_visible",
    "get_table_bounds",
    "get_corner_positions",
    "get_side_positions",
    "get_named_position",
    "get_corner_name",
    "get_side_name",
    "denormalize_xy",
)
FUNCTION_NAMES = (
    *SCENE_READS,
    "pick",
    "place",
    "put_first_on_second",
    "move_gripper_to",
    "move_gripper_by",
    "get_gripper_pos",
    "open_gripper",
    "close_gripper",
    "get_gripper_state",
    "wait",
    "say",
)
READ_NAMES = (*SCENE_READS, "get_gripper_pos", "get_gripper_state")
# the functions that move the robot (its arm or gripper)
MOTION_NAMES = frozenset(
    {
        "pick",
        "place",
        "put_first_on_second",
        "move_gripper_to",
        "move_gripper_by",
        "open_gripper",
        "close_gripper",
    }
)


def describe_functions(functions: dict[str, Callable]) -> str:
    """Prompt text for functions (plain or methods taken from their class): signature, then doc."""
    parts = []
    for name, fn in functions.items():
        sig = inspect.signature(fn)
        sig = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "self"])
        doc = inspect.cleandoc(fn.__doc__ or "").replace("\n", "\n    ")
        parts.append(f"{name}{str(sig).replace(chr(39), '')}\n    {doc}")  # postponed annotations are strings
    return "\n".join(parts)


class PolicyAPI:
    """The policy-facing functions over one backend. See `describe()` for the list."""

    def __init__(self, backend: RobotBackend, perception: str = "truth", on_event: EventSink | None = None):
        self.backend = backend
        self.perception = make_perception(perception, backend)
        self.on_event = on_event
        self.said: list[str] = []
        self._yaw = 0.0

    # -- plumbing ---------------------------------------------------------------------------
    def functions(self) -> dict[str, Callable]:
        return {name: self._wrap(name) for name in FUNCTION_NAMES}

    def pure_functions(self) -> tuple[str, ...]:
        """Names the sandbox may answer again without asking (`Sandbox.run(pure=...)`): the reads,
        when the backend changes only when commanded; none on a real robot, whose scene moves."""
        return READ_NAMES if self.backend.changes_only_when_commanded else ()

    def describe(self) -> str:
        """One entry per function: its signature, then its docstring indented. Not `def` stubs,
        which a small model copies back as its program."""
        return describe_functions({name: getattr(self, name) for name in FUNCTION_NAMES})

    @contextlib.contextmanager
    def aside(self) -> Iterator[tuple[list[dict], list[str]]]:
        """Inside, primitive calls and said lines go to the yielded lists instead of the event sink
        and `said`, and the grasp yaw is kept: for a dry run whose world is put back afterwards."""
        calls: list[dict] = []
        said0, sink, yaw = len(self.said), self.on_event, self._yaw
        self.on_event = lambda kind, payload: calls.append(payload) if kind == "primitive_call" else None
        lines: list[str] = []
        try:
            yield calls, lines
        finally:
            lines.extend(self.said[said0:])
            del self.said[said0:]
            self.on_event, self._yaw = sink, yaw

    @contextlib.contextmanager
    def rebound(self, backend: RobotBackend) -> Iterator[None]:
        """Inside, every function runs on `backend` (its own perception too), then on the old one
        again: a dry run on a twin of the robot. Safe because runs of one session never overlap."""
        old = self.backend, self.perception
        self.backend, self.perception = backend, make_perception(self.perception.name, backend)
        try:
            yield
        finally:
            self.backend, self.perception = old

    def _emit(self, kind: str, payload: dict) -> None:
        if self.on_event is not None:
            self.on_event(kind, payload)

    def _wrap(self, name: str) -> Callable:
        fn = getattr(self, name)
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            t_start = time.time()
            event = {"name": name, "args": plain(list(args)), "kwargs": plain(kwargs), "t_start": t_start}
            try:
                try:
                    sig.bind(*args, **kwargs)
                except TypeError as e:
                    raise InvalidArgumentError(f"{name}{sig}: {e}") from None
                result = fn(*args, **kwargs)
            except PrimitiveError as e:
                self._emit(
                    "primitive_call",
                    {**event, "error": {"type": type(e).__name__, "message": str(e)}, "t_end": time.time()},
                )
                raise
            self._emit("primitive_call", {**event, "result": plain(result), "t_end": time.time()})
            return result

        return call

    def _ws(self):
        return self.backend.workspace()

    def _objs(self) -> dict[str, Observation]:
        return self.perception.observe()

    def _obj(self, name: object, need_visible: bool = True) -> Observation:
        objs = self._objs()
        name = check.name(name, objs)
        o = objs[name]
        if need_visible and not o.visible:
            raise NotVisibleError(
                f"{name!r} is not visible to the {self.perception.name} perception right now"
            )
        return o

    # -- perception -------------------------------------------------------------------------
    def get_obj_names(self) -> list[str]:
        """Names of all objects in the scene, e.g. ['red block', 'blue bowl']."""
        return list(self.backend.state()["objects"])

    def get_obj_pos(self, name: str) -> np.ndarray:
        """Position [x, y] in metres (table frame: +x right, +y away from the robot) of an object's centre."""
        return self._obj(name).position[:2].copy()

    def get_obj_xyz(self, name: str) -> np.ndarray:
        """Position [x, y, z] in metres: a block's centre, or a bowl's base centre; z is up from the table."""
        return self._obj(name).position.copy()

    def get_bbox(self, name: str) -> np.ndarray:
        """Axis-aligned footprint [x_min, y_min, x_max, y_max] of an object in metres."""
        return self._obj(name).bbox.copy()

    def get_color(self, name: str) -> str:
        """Color word of an object, e.g. 'red'."""
        return self._obj(name, need_visible=False).color

    def is_obj_visible(self, name: str) -> bool:
        """True when the perception (ground truth or camera) currently sees the object."""
        return bool(self._obj(name, need_visible=False).visible)

    def get_table_bounds(self) -> np.ndarray:
        """Workspace bounds [x_min, y_min, x_max, y_max] in metres."""
        ws = self._ws()
        return np.array([ws.x[0], ws.y[0], ws.x[1], ws.y[1]], dtype=float)

    def get_corner_positions(self) -> np.ndarray:
        """The four corners as a (4, 2) array: top left, top right, bottom left, bottom right."""
        pos = named_positions(self._ws())
        return np.array([pos[n] for n in CORNER_NAMES])

    def get_side_positions(self) -> np.ndarray:
        """The four side midpoints as a (4, 2) array: top, bottom, left, right."""
        pos = named_positions(self._ws())
        return np.array([pos[n] for n in SIDE_NAMES])

    def get_named_position(self, name: str) -> np.ndarray:
        """[x, y] of a named position: 'top left corner', ..., 'top side', ..., or 'middle'."""
        if not isinstance(name, (str, np.str_)) or len(name) > check.MAX_NAME_LEN:
            raise InvalidArgumentError(f"position must be a short name like 'middle', got {name!r:.60}")
        place = position_name(str(name))
        if place is None:
            known = ", ".join(map(repr, POSITION_NAMES))
            raise InvalidArgumentError(f"{str(name)!r} is not a named position; the named positions: {known}")
        return np.array(named_positions(self._ws())[place])

    def get_corner_name(self, xy) -> str:
        """Name of the workspace corner nearest to [x, y], e.g. 'top left corner'."""
        return nearest_name(check.vector(xy, 2, "xy"), CORNER_NAMES, self._ws())

    def get_side_name(self, xy) -> str:
        """Name of the workspace side nearest to [x, y], e.g. 'left side'."""
        return nearest_name(check.vector(xy, 2, "xy"), SIDE_NAMES, self._ws())

    def denormalize_xy(self, xy) -> np.ndarray:
        """Map [u, v] in 0..1 (0,0 = bottom left, 1,1 = top right) to [x, y] in metres."""
        uv = check.vector(xy, 2, "xy")
        ws = self._ws()
        return np.array([ws.x[0] + uv[0] * (ws.x[1] - ws.x[0]), ws.y[0] + uv[1] * (ws.y[1] - ws.y[0])])

    # -- control ----------------------------------------------------------------------------
    def pick(self, name: str) -> None:
        """Pick up a block by name (approach from above, grasp, lift). Raises GraspError on failure."""
        o = self._obj(name)
        held = self.backend.gripper_state()["holding"]
        if held == o.name:
            return  # already in hand: "pick up X" is done (a follow-up command often repeats it)
        if held is not None:
            raise GraspError(f"already holding {held!r}; place it before picking {o.name!r}")
        if o.kind != "block":
            raise InvalidArgumentError(f"only blocks can be picked up; {o.name!r} is a {o.kind}")
        objs, table_z = self._objs(), self._ws().table_z
        self.backend.check_path(motions.pick_column(o, objs, table_z))
        self._yaw = motions.pick(self.backend, o, objs, table_z, o.yaw)

    def place(self, target) -> None:
        """Put the held block on `target`: an object name (a block: stack on it; a bowl: drop it in)
        or a table position [x, y] in metres."""
        held = self.backend.gripper_state()["holding"]
        xy, on_table = self._target_xy(target, exclude=held)
        if held is None:
            raise GraspError("not holding anything; call pick(name) first")
        if on_table:  # not on a rim, not half on a block
            placement.check_target(xy, self._objs(), held, self._ws())
        objs, table_z = self._objs(), self._ws().table_z
        self.backend.check_path(motions.place_column(xy, objs, table_z, held))
        self._yaw = motions.place(self.backend, xy, objs, table_z, held, self._yaw)
        if self.perception.name == "camera":  # clear the camera's view for the next look
            self.backend.move_ee(motions.park_position(self._ws()), self._yaw)

    def put_first_on_second(self, obj: str, target) -> None:
        """Pick the block `obj` and place it on `target` (an object name or a position [x, y] in metres)."""
        o = self._obj(obj)
        xy, on_table = self._target_xy(target, exclude=o.name)
        if on_table:
            placement.check_target(xy, self._objs(), o.name, self._ws())
        # the whole route first (down, up, across, down), so that a backend with safety limits
        # refuses before the pick moves anything, the crossing between the two columns included
        objs, table_z = self._objs(), self._ws().table_z
        pick_column = motions.pick_column(o, objs, table_z)
        self.backend.check_path(
            [*pick_column, pick_column[0], *motions.place_column(xy, objs, table_z, o.name)]
        )
        self.pick(o.name)
        self.place(target)

    def _target_xy(self, target, exclude: str | None) -> tuple[np.ndarray, bool]:
        """[x, y] of a target, and whether it is a spot on the table (which must be clear to land
        on) rather than an object to stack on or drop into. A string is an object's name, or else
        the words for a named place ('top left corner', 'the far right corner')."""
        if not isinstance(target, (str, np.str_)):
            return check.xy_in_workspace(target, self._ws(), "target"), True
        name = str(target)
        place = position_name(name)
        if place is not None and name not in self.backend.state()["objects"]:  # an object's name wins
            return np.array(named_positions(self._ws())[place]), True
        try:
            o = self._obj(name)
        except UnknownObjectError:
            if mentions_place(name):
                known = ", ".join(map(repr, POSITION_NAMES))
                raise InvalidArgumentError(
                    f"{name!r} is no object and names no single place; the named places: {known}"
                ) from None
            raise
        if o.name == exclude:
            raise InvalidArgumentError(f"cannot put {o.name!r} on itself")
        if not self._ws().contains(o.position[:2], margin=0.02):
            raise OutOfWorkspaceError(f"{o.name!r} lies outside the workspace; move it back first")
        return o.position[:2].copy(), False

    def move_gripper_to(self, xyz, speed: float = 1.0) -> None:
        """Move the gripper tip in a straight line to [x, y, z] metres (z above the table), pointing down.
        speed is a fraction of full speed in (0, 2]."""
        p = check.xyz_in_workspace(xyz, self._ws())
        s = check.number(speed, "speed", 0.01, 2.0)
        self.backend.move_ee(p, self._yaw, s)

    def move_gripper_by(self, dxyz) -> None:
        """Move the gripper by a small offset [dx, dy, dz] metres (each at most 0.1) - for reactive loops."""
        d = check.vector(dxyz, 3, "dxyz")
        if np.max(np.abs(d)) > check.MAX_STEP_M:
            raise InvalidArgumentError(
                f"move_gripper_by moves at most {check.MAX_STEP_M} m per axis; got {d.tolist()}"
            )
        target = self.backend.ee_position() + d
        self.backend.move_ee(check.xyz_in_workspace(target, self._ws(), "resulting position"), self._yaw, 0.5)

    def get_gripper_pos(self) -> np.ndarray:
        """Gripper tip position [x, y, z] in metres."""
        return np.asarray(self.backend.ee_position(), dtype=float).copy()

    def open_gripper(self) -> None:
        """Open the fingers (releases whatever is held)."""
        self.backend.set_gripper(False)

    def close_gripper(self) -> bool:
        """Close the fingers; returns True when an object is now held."""
        return bool(self.backend.set_gripper(True))

    def get_gripper_state(self) -> dict:
        """{'open': bool, 'width': metres between the fingers, 'holding': object name or None}."""
        return dict(self.backend.gripper_state())

    def wait(self, seconds: float) -> None:
        """Let `seconds` (0..30) of robot time pass with the arm holding still."""
        self.backend.wait(check.number(seconds, "seconds", 0.0, check.MAX_WAIT_S))

    def say(self, text: str) -> None:
        """Say a sentence to the user (recorded in the trace); long text is cut to 2000 characters."""
        line = check.text(text)
        self.said.append(line)
        self._emit("say", {"text": line})
