"""Warm pool of pre-started workers (numpy/shapely imported, limits in force, waiting for code).

Each worker serves ONE run and is then killed; a background thread keeps `size` idle workers
ready (plus one per caller currently waiting; a running program's replacement boots when it
finishes, as long as a warm worker is left), never more than `max_workers` alive, boots at
most `parallel_boots` at a time, and reaps the dead. Thread-safe; nested runs simply take
another worker.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections import deque

from capstan.sandbox import protocol
from capstan.sandbox.isolation import Isolation

BOOT_TIMEOUT_S = 30.0


class PoolError(RuntimeError):
    """No worker could be had: the pool is closed, broken, or every worker stayed busy."""


class WorkerState(enum.Enum):
    BOOTING = "booting"
    READY = "ready"
    RUNNING = "running"
    DEAD = "dead"


class WorkerProcess:
    """Host-side handle: the process and its channel."""

    def __init__(self, proc: subprocess.Popen, chan: protocol.Channel):
        self.proc = proc
        self.chan = chan
        self.state = WorkerState.BOOTING
        self.started = time.monotonic()
        self.report: dict | None = None

    def kill(self) -> None:
        if self.state is WorkerState.DEAD:
            return
        self.state = WorkerState.DEAD
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.chan.close()

    def exit_description(self, wait_s: float = 0.5) -> str:
        try:
            code = self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        if 128 < code < 128 + 65 and code - 128 in signal.valid_signals():
            # bwrap exits with 128 + the signal that ended the process inside
            return f"killed by signal {signal.Signals(code - 128).name} (exit status {code})"
        return f"exit status {code}"


class Launcher:
    """Starts one worker process under the chosen isolation."""

    def __init__(self, isolation: Isolation, config: dict, max_frame: int):
        self.isolation = isolation
        self.config = config
        self.max_frame = max_frame

    def start(self) -> WorkerProcess:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            argv = self.isolation.command(child.fileno(), self.config)
            debug = os.environ.get("CAPSTAN_SANDBOX_DEBUG") == "1"
            proc = subprocess.Popen(  # noqa: S603 - the worker command the isolation layer built, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if debug else subprocess.DEVNULL,
                pass_fds=(child.fileno(),),
                close_fds=True,
                start_new_session=True,
                **self.isolation.popen_kwargs(),
            )
        finally:
            child.close()
        return WorkerProcess(proc, protocol.Channel(parent, max_frame=self.max_frame))

    def close(self) -> None:
        pass


class WorkerPool:
    def __init__(self, launcher: Launcher, size: int, max_workers: int, parallel_boots: int = 2):
        self.launcher = launcher
        self.size = size
        self.max_workers = max(max_workers, size, 1)
        self.parallel_boots = parallel_boots
        self.first_report: dict | None = None
        self._cond = threading.Condition()
        self._idle: deque[WorkerProcess] = deque()
        self._booting: list[WorkerProcess] = []
        self._dead: list[WorkerProcess] = []
        self._busy = 0
        self._waiting = 0
        self._failures = 0
        self._broken: str | None = None
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._maintain, name="sandbox-pool", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers

    def acquire(self, deadline: float, cancel=None) -> WorkerProcess:
        with self._cond:
            self._waiting += 1
            self._wake()
            try:
                while True:
                    if self._closed:
                        raise PoolError("the sandbox is closed; create a new Sandbox")
                    if self._broken:
                        raise PoolError(self._broken)
                    while self._idle:
                        worker = self._idle.popleft()
                        if worker.proc.poll() is None:
                            worker.state = WorkerState.RUNNING
                            self._busy += 1
                            self._wake()
                            return worker
                        worker.kill()
                        self._dead.append(worker)
                    if cancel is not None and cancel.is_set():
                        raise protocol.ChannelCancelled()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise protocol.ChannelTimeout()
                    self._cond.wait(min(left, 0.05))
            finally:
                self._waiting -= 1

    def release(self, worker: WorkerProcess) -> None:
        worker.kill()
        with self._cond:
            self._busy -= 1
            self._dead.append(worker)
            self._wake()

    def wait_ready(self, count: int, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        with self._cond:
            while len(self._idle) < count and not self._broken and not self._closed:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return len(self._idle) >= count

    def stats(self) -> dict:
        with self._cond:
            return {"idle": len(self._idle), "booting": len(self._booting), "busy": self._busy}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wake()
            self._cond.notify_all()
        self._thread.join(10)
        with self._cond:
            for worker in [*self._idle, *self._booting, *self._dead]:
                worker.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(2)
            self._idle.clear()
            self._booting.clear()
            self._dead.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.launcher.close()

    # ------------------------------------------------------------------ background

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _maintain(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        registered: dict[int, WorkerProcess] = {}
        while True:
            with self._cond:
                if self._closed:
                    return
                self._reap()
                want = min(self._target_idle(), self.max_workers - self._busy)
                deficit = want - len(self._idle) - len(self._booting)
                can_boot = deficit > 0 and len(self._booting) < self.parallel_boots and not self._broken
            if can_boot:
                try:
                    worker = self.launcher.start()
                except Exception as exc:  # noqa: BLE001 - the pool thread must survive any start failure
                    self._record_failure(f"cannot start a sandbox worker: {type(exc).__name__}: {exc}")
                    time.sleep(0.1)
                    continue
                with self._cond:
                    self._booting.append(worker)
                registered[worker.chan.fileno()] = worker
                poller.register(worker.chan.fileno(), select.POLLIN | select.POLLHUP)
                continue
            for fd, _event in poller.poll(250):
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                worker = registered.pop(fd)
                poller.unregister(fd)
                self._finish_boot(worker)
            self._expire_boots(registered, poller)

    def _target_idle(self) -> int:
        """Idle workers to keep: `size` plus one per waiting caller, except that a running
        program's replacement waits until it finishes, as long as one warm worker is left for
        the next caller. A boot (Python start, numpy and shapely imports) takes a CPU for a few
        hundred ms; overlapping it with a run slows that run's host calls severalfold."""
        deferred = min(self._busy, self.size - 1) if self.size else 0
        return self.size + self._waiting - deferred

    def _finish_boot(self, worker: WorkerProcess) -> None:
        try:
            report = _ready_report(worker.chan.recv(deadline=time.monotonic() + 2.0))
        except (protocol.ProtocolError, protocol.ChannelTimeout, OSError):
            report = None
        seccomp = str(report.get("seccomp", "")) if report is not None else ""
        if seccomp.startswith("failed"):  # fail closed: no program runs in a worker without its filter
            worker.kill()
            self._record_failure(f"a sandbox worker could not install its seccomp filter: {seccomp}")
            with self._cond:
                self._booting.remove(worker)
                self._dead.append(worker)
            return
        with self._cond:
            self._booting.remove(worker)
            if report is not None:
                worker.state = WorkerState.READY
                worker.report = report
                if self.first_report is None:
                    self.first_report = worker.report
                self._idle.append(worker)
                self._failures = 0
                self._cond.notify_all()
                return
        worker.kill()
        self._record_failure(f"a sandbox worker failed to start ({worker.exit_description()})")
        with self._cond:
            self._dead.append(worker)

    def _expire_boots(self, registered: dict, poller) -> None:
        now = time.monotonic()
        for fd, worker in list(registered.items()):
            if now - worker.started > BOOT_TIMEOUT_S:
                registered.pop(fd)
                poller.unregister(fd)
                worker.kill()
                with self._cond:
                    self._booting.remove(worker)
                    self._dead.append(worker)
                self._record_failure(f"a sandbox worker did not start within {BOOT_TIMEOUT_S:.0f} s")

    def _record_failure(self, message: str) -> None:
        with self._cond:
            self._failures += 1
            if self._failures >= 3:
                self._broken = (
                    f"{message}; 3 workers in a row failed, so the pool stopped trying. "
                    "Run with CAPSTAN_SANDBOX_DEBUG=1 to see the worker's stderr."
                )
                self._cond.notify_all()

    def _reap(self) -> None:
        self._dead = [w for w in self._dead if w.proc.poll() is None]


def _ready_report(message: object) -> dict | None:
    """The report of a worker's ("ready", report) message ({} when it is not a dict); None when the
    worker sent anything else."""
    if not (isinstance(message, tuple) and len(message) == 2 and message[0] == "ready"):
        return None
    return message[1] if isinstance(message[1], dict) else {}
