"""Dry runs for a robot that cannot snapshot its world (a real one): on a simulated twin.

The twin is a headless PyBullet world holding the robot's objects where its `state()` says they
are (lying flat at their yaw), on the same workspace, with the arm where the robot's gripper is
(holding what it holds). For the length of the run the policy API points at the twin, wrapped in
the robot's safety envelope when it has one, so a program that would knock a block off the table,
push one out of the workspace or raise is refused there and the robot never moves. Nothing here
sends a motion to the robot: only `state()` and `workspace()` are read from it.

One twin per session's engine (runs of one session never overlap): it is built on first use and
reused, reset to its first state, while the robot holds the same objects on the same workspace.
Satisfies `capstan.lmp.rehearsal.Rehearsal`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from capstan.primitives.api import PolicyAPI
from capstan.primitives.backend import RobotBackend, Workspace
from capstan.primitives.envelope import EnvelopedBackend
from capstan.primitives.errors import PrimitiveError
from capstan.primitives.geometry import BLOCK_SIZE
from capstan.primitives.outcome import RunError
from capstan.primitives.perception import quat_yaw
from capstan.primitives.rehearsal import RehearsalUnavailable, Rehearsed
from capstan.primitives.scene_state import SceneState
from capstan.sim.scene import SceneError, spec_from_state
from capstan.sim.world import Snapshot, World

HELD_GRIP_M = BLOCK_SIZE  # the fingers close on a held block from its width apart


@dataclass(frozen=True)
class TwinVideo:
    """How a rehearsal on the twin is filmed (frames per simulated second, camera, size, cap)."""

    fps: float = 8.0
    view: str = "angled"
    width: int = 320
    height: int = 240
    max_frames: int = 240


class TwinRehearsal:
    """Rehearse on a simulated twin; `video` films each rehearsal (`Rehearsed.frames`)."""

    def __init__(self, video: TwinVideo | None = None):
        self.video = video
        self._world: World | None = None
        self._key: tuple | None = None  # (object names, workspace) the twin was built for
        self._fresh: Snapshot | None = None  # the twin as first built, to reset it to
        self._closer: weakref.finalize | None = None

    def can_rehearse(self, api: PolicyAPI) -> bool:
        # a backend that snapshots is rehearsed on its own world, exactly (SnapshotRehearsal)
        return not api.backend.supports_snapshots

    def rehearse(self, api: PolicyAPI, run: Callable[[], RunError | None]) -> Rehearsed:
        real = api.backend
        try:
            state, workspace = real.state(), real.workspace()
        except PrimitiveError as exc:
            raise RehearsalUnavailable(f"the robot's scene could not be read for its twin: {exc}") from None
        twin = self.twin_of(state, workspace)
        backend = _enveloped_like(real, twin)
        before = twin.state()
        with api.rebound(backend), api.aside() as (calls, said):
            if self.video is not None:
                v = self.video
                twin.start_recording(v.fps, v.view, v.width, v.height, v.max_frames)
            try:
                error = run()
            finally:
                frames = twin.stop_recording() if self.video is not None else []
                twin.resume()  # ready for the next rehearsal, whatever happened in this one
            after = twin.state()
        return Rehearsed(error, before, after, calls, said, twin=True, frames=frames)

    def twin_of(self, state: SceneState, workspace: Workspace) -> World:
        """The twin, standing as `state` says: built, or reused and reset. RehearsalUnavailable
        when the sim cannot model the scene (an object it cannot build, a pose it cannot take)."""
        try:
            spec = spec_from_state(state, workspace)
            key = (tuple(spec["objects"]), workspace)
            if self._world is None or self._key != key or self._fresh is None:
                self.close()
                self._world = World(spec, workspace=workspace)
                self._key, self._fresh = key, self._world.snapshot()
                # the physics client goes when the rehearsal does (with its session's engine)
                self._closer = weakref.finalize(self, self._world.close)
            else:
                self._world.restore(self._fresh)
            _stand_as(self._world, state)
        except (SceneError, PrimitiveError, ValueError) as exc:
            raise RehearsalUnavailable(f"no simulated twin of this scene: {exc}") from None
        return self._world

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
        self._world, self._key, self._fresh, self._closer = None, None, None, None


def _stand_as(twin: World, state: SceneState) -> None:
    """Arm, gripper and objects as in `state`; a held object between closed fingers."""
    gripper = state["gripper"]
    held = gripper["holding"]
    objects = state["objects"]
    if held is not None and held not in objects:
        raise ValueError(f"the robot holds {held!r}, which is not among its objects")
    yaw = quat_yaw(objects[held]["orientation"]) if held is not None else 0.0
    twin.put_arm(gripper["position"], yaw, HELD_GRIP_M if held is not None else None)
    poses = {
        name: {"position": list(o["position"]), "orientation": _flat(quat_yaw(o["orientation"]))}
        for name, o in objects.items()
    }
    if held is not None:  # centred between the fingers, whatever the robot's estimate of it
        poses[held]["position"] = [float(v) for v in twin.ee_position()]
    twin.place_objects(poses)
    if held is not None and twin.holding() != held:
        raise ValueError(f"the twin's gripper could not take hold of {held!r} as the robot's does")
    if not gripper["open"] and held is None:
        twin.set_gripper(True)


def _flat(yaw: float) -> list[float]:
    return [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]


def _enveloped_like(real: RobotBackend, twin: World) -> RobotBackend:
    """The twin inside the same safety envelope as the robot, with the budgets the robot has left
    this run, when the robot has one: a program the envelope would stop on the robot is stopped on
    the twin too."""
    if not isinstance(real, EnvelopedBackend):
        return twin
    wrapped = EnvelopedBackend(twin, real.envelope, simulated=True)
    wrapped.stand_in_for(real)
    return wrapped
