"""Video frames drawn from recorded states in a child process, not while the arm moves.

While a world records, it only notes where the arm's joints and the objects are at each frame's
time (microseconds a frame); `render_frames` then draws those states in a renderer process that
holds a mirror of the scene's looks (table, arm, one body per object kind and colour). So a motion
runs as fast as headless, and since PyBullet holds the GIL while it draws, frames drawn in another
process no longer stall the service's other runs. The renderers (one per core, at most two) serve
the whole process. One that dies or stops answering is replaced; only when none can be started are
frames drawn here, on a mirror of our own.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as p
import pybullet_data

from capstan.primitives.backend import Workspace
from capstan.sim import bodies, camera
from capstan.sim.robot import ARM_JOINTS, BASE_POSITION, BASE_YAW, FINGER_JOINTS

log = logging.getLogger(__name__)

Pose = tuple[tuple[float, ...], tuple[float, ...]]
NICE = 10  # the renderers' priority below the service's
HIDDEN: Pose = ((50.0, 50.0, -50.0), (0.0, 0.0, 0.0, 1.0))  # out of every view


@dataclass(frozen=True)
class FrameState:
    """What a frame shows: the arm's joint positions (ARM_JOINTS then FINGER_JOINTS), and each
    object's kind, colour and pose."""

    joints: tuple[float, ...]
    objects: tuple[tuple[str, str, Pose], ...]


@dataclass(frozen=True)
class FrameJob:
    table_z: float
    view: camera.View
    width: int
    height: int
    states: tuple[FrameState, ...]


class Mirror:
    """The scene's looks in a client of its own: the table (and floor) at the job's height, the arm
    (no collision shapes) and a pool of object bodies per (kind, colour), reused from frame to frame."""

    def __init__(self) -> None:
        self.cid = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.cid)
        self.arm = p.loadURDF(
            "franka_panda/panda.urdf",
            BASE_POSITION,
            p.getQuaternionFromEuler([0, 0, BASE_YAW]),
            useFixedBase=True,
            flags=p.URDF_IGNORE_COLLISION_SHAPES,
            physicsClientId=self.cid,
        )
        self.factory = bodies.ObjectFactory(self.cid)
        self.table_z: float | None = None
        self.table_bodies: list[int] = []  # the table and the floor below it
        self.pool: dict[tuple[str, str], list[int]] = {}

    def draw(self, job: FrameJob) -> list[np.ndarray]:
        self._table(job.table_z)
        frames = []
        for state in job.states:
            self._show(state)
            frames.append(camera.render(self.cid, job.view, job.width, job.height, {}, rgb_only=True).rgb)
        return frames

    def _table(self, table_z: float) -> None:
        if table_z == self.table_z:
            return
        for body in self.table_bodies:
            p.removeBody(body, physicsClientId=self.cid)
        before = p.getNumBodies(physicsClientId=self.cid)
        bodies.make_table(self.cid, Workspace(x=(0.0, 0.0), y=(0.0, 0.0), table_z=table_z))
        after = p.getNumBodies(physicsClientId=self.cid)
        self.table_bodies = [p.getBodyUniqueId(i, physicsClientId=self.cid) for i in range(before, after)]
        self.table_z = table_z

    def close(self) -> None:
        if p.isConnected(self.cid):
            p.disconnect(self.cid)

    def _show(self, state: FrameState) -> None:
        for j, q in zip(ARM_JOINTS + FINGER_JOINTS, state.joints, strict=True):
            p.resetJointState(self.arm, j, q, physicsClientId=self.cid)
        used: dict[tuple[str, str], int] = {}
        for kind, color, (position, orientation) in state.objects:
            key = (kind, color)
            pool = self.pool.setdefault(key, [])
            k = used[key] = used.get(key, 0) + 1
            if len(pool) < k:
                pool.append(self.factory.create(kind, color, bodies.BodyState(position, orientation)))
            p.resetBasePositionAndOrientation(pool[k - 1], position, orientation, physicsClientId=self.cid)
        for key, pool in self.pool.items():
            for body in pool[used.get(key, 0) :]:
                p.resetBasePositionAndOrientation(body, *HIDDEN, physicsClientId=self.cid)


def _serve(conn: Connection) -> None:
    """The renderer process: draw each job it is sent, until the connection closes. Below the
    service's priority: a video is drawn while the model is idle, or else gives way to it."""
    os.nice(NICE)
    mirror = Mirror()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", mirror.draw(job)))
        except Exception as exc:  # noqa: BLE001 - report it; the run goes on without these frames
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Renderer:
    """The process's renderer: started on first use (`python -m capstan.sim.frames`, so no
    module of the caller's is imported again there), one job at a time, restarted if it died."""

    def __init__(self, deadline_s: float = 30.0) -> None:
        self.deadline_s = deadline_s  # for a job, plus 0.2 s a frame
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._local: Mirror | None = None

    def draw(self, job: FrameJob) -> list[np.ndarray]:
        """The job's frames from the renderer (started again once if it fails on the way); drawn
        here only if no renderer can be started; none if it fails on this job twice or exceeds its
        deadline (media are best effort: a run never fails for its video)."""
        with self._lock:
            for attempt in range(2):
                try:
                    conn = self._connection()
                except OSError as exc:
                    log.warning("cannot start a frame renderer (%s); drawing frames here", exc)
                    if self._local is None:
                        self._local = Mirror()
                    return self._local.draw(job)
                try:
                    status, result = self._ask(conn, job)
                except (OSError, EOFError, TimeoutError) as exc:
                    log.warning("the frame renderer failed (%s); attempt %d of 2", exc, attempt + 1)
                    self._stop(wedged=isinstance(exc, TimeoutError))
                    continue
                except BaseException:  # interrupted mid-job: its answer must not reach the next one
                    self._stop()
                    raise
                if status == "ok":
                    return result
                log.warning("the frame renderer could not draw a job: %s", result)
                return []
            return []

    def _ask(self, conn: Connection, job: FrameJob) -> tuple[str, Any]:
        conn.send(job)
        deadline_s = self.deadline_s + 0.2 * len(job.states)  # ~40 ms a frame when well
        if not conn.poll(deadline_s):
            raise TimeoutError(f"no frames after {deadline_s:.0f} s")
        return conn.recv()

    def start(self) -> None:
        with self._lock:
            try:
                self._connection()
            except OSError as exc:  # frames are then drawn here; the service starts regardless
                log.warning("cannot start a frame renderer: %s", exc)

    def _connection(self) -> Connection:
        if self._proc is None or self._proc.poll() is not None or self._conn is None:
            self._stop()
            ours, theirs = socket.socketpair()
            with ours, theirs:
                self._proc = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
                    [sys.executable, "-m", "capstan.sim.frames", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,  # PyBullet prints its build time there
                    env=_child_environment(),
                )
                self._conn = Connection(ours.detach())
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._stop()
            if self._local is not None:
                self._local.close()
                self._local = None

    def _stop(self, wedged: bool = False) -> None:
        conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            conn.close()  # a renderer that is well reads EOF and exits
        if proc is not None:
            try:
                proc.wait(0 if wedged else 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _child_environment() -> dict[str, str]:
    """This environment; from a source checkout, with that checkout first on PYTHONPATH, so the
    renderer runs the same capstan (a worktree's included). An installed capstan needs nothing."""
    source = Path(__file__).resolve().parents[2]
    if not (source / "pyproject.toml").exists():
        return dict(os.environ)
    path = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


class Renderers:
    """Renderer processes, one per core (at most two): a job's frames are split among them and
    drawn side by side, since the model and the physics are idle while a run's video is drawn."""

    def __init__(self, count: int) -> None:
        self.members = [Renderer() for _ in range(max(1, count))]
        self._threads = concurrent.futures.ThreadPoolExecutor(len(self.members), "capstan-frames")

    def start(self) -> None:
        for member in self.members:
            member.start()

    def draw(self, job: FrameJob) -> list[np.ndarray]:
        share = -(-len(job.states) // len(self.members))
        parts = [job.states[i : i + share] for i in range(0, len(job.states), share)]
        if len(parts) == 1:
            return self.members[0].draw(job)
        drawing = [
            self._threads.submit(member.draw, dataclasses.replace(job, states=part))
            for member, part in zip(self.members, parts, strict=False)
        ]
        return [frame for future in drawing for frame in future.result()]

    def close(self) -> None:
        for member in self.members:
            member.close()
        self._threads.shutdown(wait=False)


_RENDERERS = Renderers(min(2, os.cpu_count() or 1))
atexit.register(_RENDERERS.close)


def start_renderer() -> None:
    """Start the renderer processes now, so the first video does not wait for them to load."""
    _RENDERERS.start()


def render_frames(job: FrameJob) -> list[np.ndarray]:
    """RGB frames (H, W, 3 uint8) of `job`'s states, in order."""
    if not job.states:
        return []
    return _RENDERERS.draw(job)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
