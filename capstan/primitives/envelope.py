"""A safety envelope between the primitives and a real robot: limits checked before every motion.

`Envelope` is what an operator allows one robot: a workspace box (x, y) and a height band for the
gripper's tool point, keep-out boxes (a camera mount, a fixture) that no straight motion may enter
or cross, a speed factor cap and a grasp force cap handed to the robot's own controller, and a
budget of motions and seconds per run. `EnvelopedBackend(inner, envelope)` wraps any RobotBackend
and checks each motion verb before delegating: a breach raises `EnvelopeError` and the robot never
moves. The error names the limit, the allowed range and (for a position) the nearest allowed
point, so it goes back to the model as feedback it can act on.

Frames: x and y are table-frame metres, as in move_ee; every z in an envelope (the band and the
keep-out boxes) is a height above the table top, so a file does not depend on where a robot puts
its table (`Workspace.table_z`; 0 on the simulator, where the two coincide). The envelope checks
the tool point only: pad a keep-out box by the gripper's size (about 0.06 m) to keep the hand out.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capstan.primitives import validation as check
from capstan.primitives.backend import CameraImage, RobotBackend, Workspace
from capstan.primitives.envelope_checks import Limits
from capstan.primitives.errors import EnvelopeError, InvalidArgumentError
from capstan.primitives.motions import LOWEST_TCP
from capstan.primitives.scene_state import GripperStatus, SceneState

Range = tuple[float, float]

# Conservative limits for a robot configured without an envelope file (Envelope.default_for).
# A floor as low as the grasps go: below it the fingertips would press into the table (at 5 mm
# the simulated arm pushed them 6 mm in, with ~210 N).
DEFAULT_Z_FLOOR = LOWEST_TCP
DEFAULT_Z_CEILING = 0.5
DEFAULT_MAX_SPEED = 0.5
DEFAULT_MAX_FORCE_N = 40.0
DEFAULT_MAX_MOTIONS = 60
DEFAULT_MAX_RUN_S = 300.0
# The default box reaches this far in front of the workspace (towards the robot base): there the
# gripper waits out of the top camera's view (primitives.motions.park_position) and starts its runs.
PARK_MARGIN = 0.08
_COORD_LIMIT = 10.0  # metres: nothing on a tabletop is further away


def _range(value: object, what: str) -> Range:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{what} must be a pair of numbers [low, high] in metres, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and -_COORD_LIMIT < lo < hi < _COORD_LIMIT):
        raise ValueError(
            f"{what} must satisfy -{_COORD_LIMIT} < low < high < {_COORD_LIMIT} metres, got {value!r}"
        )
    return lo, hi


def _number(value: object, what: str, lo: float, hi: float, *, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(f"{what} must be {'an integer' if integer else 'a number'}, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo < v <= hi):
        raise ValueError(f"{what} must be more than {lo} and at most {hi}, got {value!r}")
    return v


def _keys(d: object, allowed: set[str], required: set[str], what: str) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")
    missing = sorted(required - set(d))
    if missing:
        raise ValueError(f"{what}: missing key(s) {missing}")
    return d


@dataclass(frozen=True)
class Box:
    """An axis-aligned keep-out box: x and y in the table frame, z as heights above the table top."""

    name: str
    x: Range
    y: Range
    z: Range

    @classmethod
    def from_dict(cls, d: object, what: str = "keep-out box") -> Box:
        d = _keys(d, {"name", "x", "y", "z"}, {"name", "x", "y", "z"}, what)
        name = d["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            raise ValueError(f"{what}: 'name' must be a non-empty string of at most 80 characters")
        return cls(
            name,
            _range(d["x"], f"{what} {name!r} x"),
            _range(d["y"], f"{what} {name!r} y"),
            _range(d["z"], f"{what} {name!r} z"),
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "x": list(self.x), "y": list(self.y), "z": list(self.z)}


@dataclass(frozen=True)
class Envelope:
    """What one robot may do. Build with `from_dict`/`from_file` (strict) or `default_for`."""

    x: Range
    y: Range
    z_floor: float = DEFAULT_Z_FLOOR  # the tool point never goes lower above the table top
    z_ceiling: float = DEFAULT_Z_CEILING
    keep_out: tuple[Box, ...] = field(default_factory=tuple)
    max_speed: float = DEFAULT_MAX_SPEED  # relative speed factor cap, 0 < s <= 1 (faster requests are slowed)
    max_force_n: float = DEFAULT_MAX_FORCE_N  # grasp force cap, handed to the robot's controller
    max_motions_per_run: int = DEFAULT_MAX_MOTIONS  # move_ee and set_gripper calls
    max_run_s: float = DEFAULT_MAX_RUN_S  # wall time from a run's first motion

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _range(self.x, "x"))
        object.__setattr__(self, "y", _range(self.y, "y"))
        floor = _number(self.z_floor, "z_floor", -math.inf, _COORD_LIMIT)
        ceiling = _number(self.z_ceiling, "z_ceiling", -math.inf, _COORD_LIMIT)
        if not 0.0 <= floor < ceiling:
            raise ValueError(
                f"need 0 <= z_floor < z_ceiling (heights above the table top, metres), got z_floor "
                f"{self.z_floor!r} and z_ceiling {self.z_ceiling!r}"
            )
        _number(self.max_speed, "max_speed", 0.0, 1.0)
        _number(self.max_force_n, "max_force_n", 0.0, 1000.0)
        _number(self.max_motions_per_run, "max_motions_per_run", 0, 1_000_000, integer=True)
        _number(self.max_run_s, "max_run_s", 0.0, 86400.0)
        object.__setattr__(self, "keep_out", tuple(self.keep_out))
        names = [b.name for b in self.keep_out]
        if len(set(names)) != len(names):
            raise ValueError(f"keep_out box names must be unique, got {names}")

    _KEYS = frozenset(
        {
            "x",
            "y",
            "z_floor",
            "z_ceiling",
            "keep_out",
            "max_speed",
            "max_force_n",
            "max_motions_per_run",
            "max_run_s",
        }
    )

    @classmethod
    def from_dict(cls, d: object, what: str = "envelope") -> Envelope:
        """From plain JSON data: `x` and `y` are required, every other limit defaults to the
        conservative one; unknown keys and bad values raise ValueError naming them."""
        d = _keys(d, set(cls._KEYS), {"x", "y"}, what)
        boxes = d.get("keep_out", [])
        if not isinstance(boxes, list):
            raise ValueError(f"{what}: keep_out must be a list of boxes, got {type(boxes).__name__}")
        limits = {k: v for k, v in d.items() if k not in ("x", "y", "keep_out")}
        try:
            return cls(
                x=_range(d["x"], f"{what}: x"),
                y=_range(d["y"], f"{what}: y"),
                keep_out=tuple(Box.from_dict(b, f"{what}: keep-out box") for b in boxes),
                **limits,
            )
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(what) else f"{what}: {msg}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> Envelope:
        """One envelope from a JSON file (the robot agent's --envelope)."""
        return cls.from_dict(read_json(path), f"envelope file {path}")

    @classmethod
    def default_for(cls, workspace: Workspace) -> Envelope:
        """The conservative envelope of a robot configured without a file: its workspace box
        (reaching PARK_MARGIN towards the robot, where the gripper parks), 5 mm to 0.5 m above
        the table, half speed, 40 N, 60 motions and 300 s per run."""
        return cls(x=workspace.x, y=(workspace.y[0] - PARK_MARGIN, workspace.y[1]))

    def to_dict(self) -> dict:
        return {
            "x": list(self.x),
            "y": list(self.y),
            "z_floor": self.z_floor,
            "z_ceiling": self.z_ceiling,
            "keep_out": [b.to_dict() for b in self.keep_out],
            "max_speed": self.max_speed,
            "max_force_n": self.max_force_n,
            "max_motions_per_run": self.max_motions_per_run,
            "max_run_s": self.max_run_s,
        }


def read_json(path: str | Path) -> object:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read envelope file {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"envelope file {path} is not valid JSON: {exc}") from None


def envelopes_from_file(path: str | Path) -> dict[str, Envelope]:
    """{robot name: Envelope} from a JSON object mapping robot names to envelopes (CAPSTAN_ENVELOPE)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f'envelope file {path} must hold a JSON object {{"robot name": {{envelope}}, ...}}')
    return {
        str(name): Envelope.from_dict(d, f"envelope file {path}, robot {name!r}") for name, d in data.items()
    }


@dataclass(frozen=True)
class _Snapshot:
    inner: Any
    motions: int
    run_started: float | None


class EnvelopedBackend(RobotBackend):
    """`inner` behind `envelope`: every motion verb is checked before it reaches the robot.

    move_ee: the target must lie in the box and the height band and outside every keep-out zone,
    and the straight move from the current tool point must not cross a keep-out zone. Speed is
    clamped to `max_speed` rather than refused: a slower motion is as safe and the program still
    does what it meant. move_ee and set_gripper each count as one motion; a run may make
    `max_motions_per_run`, and from its first motion (or wait) it has `max_run_s` seconds of wall
    time. `begin_run()` starts both budgets again. The grasp force cap cannot be checked here (no
    verb takes a force): it goes to the inner backend's `apply_limits` at wrap time, with the
    speed cap. Reads, the e-stop and the optional capabilities pass through unchanged. Of the
    inner backend's other attributes only data passes (its name, its url): a method this class
    does not define is refused, so a verb added to some backend cannot move the robot unchecked.
    """

    def __init__(self, inner: RobotBackend, envelope: Envelope, simulated: bool = False):
        """`simulated`: `inner` runs faster than real time (a twin), so its waits take no wall time;
        their seconds are counted as the robot will spend them."""
        self.inner = inner
        self.envelope = envelope
        self._simulated = simulated
        self._waited = 0.0  # seconds of waits a simulated robot did not spend on the wall clock
        self.limits = Limits(envelope, inner.workspace().table_z)
        self.changes_only_when_commanded = inner.changes_only_when_commanded
        self.supports_snapshots = inner.supports_snapshots
        self.supports_recording = inner.supports_recording
        self.supports_placing = inner.supports_placing
        self.supports_declaring = inner.supports_declaring
        self.supports_recovery = inner.supports_recovery
        self.supports_watchdog = inner.supports_watchdog
        self._motions = 0
        self._run_started: float | None = None  # time.monotonic() of the run's first motion
        inner.apply_limits(envelope.max_speed, envelope.max_force_n)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":  # not set yet, or private: never the inner's
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if callable(value):  # fail closed: a verb this wrapper has not checked never reaches the robot
            raise AttributeError(
                f"{type(self.inner).__name__}.{name} is not available behind the safety envelope "
                "(EnvelopedBackend passes only the verbs it checks)"
            )
        return value

    # -- the budgets ------------------------------------------------------------------------
    def begin_run(self) -> None:
        self._motions = 0
        self._run_started = None
        self._waited = 0.0
        self.inner.begin_run()

    def stand_in_for(self, real: EnvelopedBackend) -> None:
        """Take over `real`'s envelope budgets as they stand (a twin rehearsing the next program of
        a run that has already spent motions and seconds): a program that would run out on the
        robot runs out on the twin too."""
        self._motions, self._run_started, self._waited = real._motions, real._run_started, real._waited

    @property
    def motions(self) -> int:
        """Motions made since begin_run()."""
        return self._motions

    def _spend(self, seconds: float = 0.0, motion: bool = True) -> None:
        """Refuse when the run's motions or seconds are used up; else count this one."""
        env = self.envelope
        if motion and self._motions >= env.max_motions_per_run:
            raise EnvelopeError(
                f"motion limit: this run has made {self._motions} motions, the most the safety envelope "
                f"allows per run (max_motions_per_run = {env.max_motions_per_run}); do the task with fewer "
                "motions or split it over several commands"
            )
        now = time.monotonic()
        elapsed = (0.0 if self._run_started is None else now - self._run_started) + self._waited
        if elapsed + seconds > env.max_run_s:
            waiting = f" and waiting {seconds:g} s more" if seconds else ""
            raise EnvelopeError(
                f"run time limit: this run has kept the robot busy for {elapsed:.1f} s{waiting}; the safety "
                f"envelope allows {env.max_run_s:g} s per run (max_run_s), counted from its first motion; "
                "split the task over several commands"
            )
        if self._run_started is None:
            self._run_started = now
        self._motions += motion

    # -- checked verbs ----------------------------------------------------------------------
    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        target = check.vector(xyz, 3, "move_ee target")
        number = isinstance(speed, (int, float, np.integer, np.floating)) and not isinstance(speed, bool)
        if not (number and math.isfinite(speed) and speed > 0):
            raise InvalidArgumentError(f"move_ee speed must be a positive number, got {speed!r}")
        problem = self.limits.point_problem(target)
        if problem is None:
            here = check.vector(self.inner.ee_position(), 3, "tool point")
            problem = self.limits.path_problem(here, target)
        if problem is not None:
            raise EnvelopeError(problem)
        self._spend()
        self.inner.move_ee(target, yaw, min(float(speed), self.envelope.max_speed))

    def set_gripper(self, closed: bool) -> bool:
        self._spend()
        return self.inner.set_gripper(closed)

    def wait(self, seconds: float) -> None:
        self._spend(float(seconds), motion=False)
        self.inner.wait(seconds)
        if self._simulated:
            self._waited += float(seconds)

    def can_reach(self, xyz, yaw: float = 0.0) -> bool:
        p = check.vector(xyz, 3, "can_reach point")
        return self.limits.point_problem(p) is None and self.inner.can_reach(p, yaw)

    def check_path(self, points) -> None:
        pts = [check.vector(p, 3, "path point") for p in points]
        for i, p in enumerate(pts):
            problem = self.limits.point_problem(p) or (self.limits.path_problem(pts[i - 1], p) if i else None)
            if problem is not None:
                raise EnvelopeError(problem)
        self.inner.check_path([p.tolist() for p in pts])

    def apply_limits(self, max_speed: float, max_force_n: float) -> None:
        env = self.envelope
        self.inner.apply_limits(min(max_speed, env.max_speed), min(max_force_n, env.max_force_n))

    # -- unchanged --------------------------------------------------------------------------
    def workspace(self) -> Workspace:
        return self.inner.workspace()

    def state(self) -> SceneState:
        return self.inner.state()

    def render(self, view: str = "top", width: int = 320, height: int = 240) -> CameraImage:
        return self.inner.render(view, width, height)

    def ee_position(self) -> np.ndarray:
        return self.inner.ee_position()

    def gripper_state(self) -> GripperStatus:
        return self.inner.gripper_state()

    def stop(self) -> None:
        self.inner.stop()

    def resume(self) -> None:
        self.inner.resume()

    def close(self) -> None:
        self.inner.close()

    def snapshot(self) -> Any:
        # a dry run's motions are put back with its world: they never reached a robot
        return _Snapshot(self.inner.snapshot(), self._motions, self._run_started)

    def restore(self, snap: Any) -> None:
        if not isinstance(snap, _Snapshot):
            raise TypeError("restore() takes a snapshot this EnvelopedBackend's snapshot() returned")
        self.inner.restore(snap.inner)
        self._motions, self._run_started = snap.motions, snap.run_started

    def headless(self) -> contextlib.AbstractContextManager[None]:
        return self.inner.headless()

    def start_recording(
        self,
        fps: float = 10.0,
        view: str = "angled",
        width: int = 320,
        height: int = 240,
        max_frames: int = 1000,
    ) -> None:
        self.inner.start_recording(fps, view, width, height, max_frames)

    def stop_recording(self, skip_first: bool = False) -> list[np.ndarray]:
        return self.inner.stop_recording(skip_first)

    def place_objects(self, poses: dict) -> None:
        self.inner.place_objects(poses)

    def declare(self, objects: object) -> None:
        self.inner.declare(objects)  # says what is on the table; moves nothing

    def recover(self) -> None:
        self.inner.recover()  # clears the robot's error state; moves nothing

    def clear_watchdog(self) -> None:
        self.inner.clear_watchdog()  # lets it move again; moves nothing
