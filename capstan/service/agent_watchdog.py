"""The robot agent's heartbeat watchdog: the robot stops when the service that drives it goes quiet.

A motion runs on the agent while the service that asked for it waits on the network. When that
link dies mid-motion (a pulled cable, a crashed service, a proxy that closes), nobody is left who
could send the e-stop. So each client (RemoteRobot) proves every `limit / 4` that it is still there
(`POST /v1/robot/heartbeat`, from a process of its own, whatever its program is doing), and this
watchdog, in a thread of its own on the agent:

- trips when a client's last heartbeat is older than the limit: calls the backend's `stop()`
  (which reaches a motion in flight, and is latched: later motions raise RobotStoppedError),
  logs why, and stays tripped. It never resumes by itself: `POST /v1/robot/resume` does;
- fails closed: a motion is refused while no client's heartbeat is fresh, so no motion starts
  without someone able to stop it. Reads stay allowed.

A client that ends its heartbeat on purpose (RemoteRobot.close()) leaves without tripping it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from capstan.primitives.errors import RobotStoppedError, RobotUnavailableError

log = logging.getLogger("capstan.agent_watchdog")

DEFAULT_HEARTBEAT_MS = 250
MIN_HEARTBEAT_MS = 20  # clients beat every limit/4: below this no network keeps up
MAX_HEARTBEAT_MS = 10_000  # a robot that moves on for longer unwatched is not watched


def heartbeat_limit_problem(
    limit_ms: int, unsafe_no_heartbeat: bool, switch: str = "unsafe_no_heartbeat=True"
) -> str | None:
    """Why a heartbeat limit is refused (None when it is fine). 0 turns the watchdog off, which only
    the loudly named unsafe `switch` may do."""
    if limit_ms == 0:
        if unsafe_no_heartbeat:
            return None
        return (
            "a heartbeat limit of 0 turns the watchdog off, so nothing would stop the robot when the link "
            f"to the service dies mid-motion; keep a limit, or add {switch} to mean it"
        )
    if unsafe_no_heartbeat:
        return f"{switch} goes only with a heartbeat limit of 0"
    if not MIN_HEARTBEAT_MS <= limit_ms <= MAX_HEARTBEAT_MS:
        return (
            f"the heartbeat limit must be {MIN_HEARTBEAT_MS}..{MAX_HEARTBEAT_MS} ms (or 0 with {switch}), "
            f"got {limit_ms}"
        )
    return None


class HeartbeatWatchdog:
    """Heartbeats by client, the trip, and the rule a motion must pass. `stop` is the backend's
    e-stop; it must be safe to call from another thread while a motion runs."""

    def __init__(
        self, stop: Callable[[], None], limit_ms: int = DEFAULT_HEARTBEAT_MS, *, unsafe_no_heartbeat=False
    ):
        problem = heartbeat_limit_problem(limit_ms, unsafe_no_heartbeat)
        if problem:
            raise ValueError(problem)
        self.limit_ms = int(limit_ms)
        self._stop_backend = stop
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}  # client -> time.monotonic() of its last heartbeat
        self._last_beat: float | None = None
        self._tripped_at: float | None = None  # time.time() of the trip, until resume
        self._reason: str | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.limit_ms > 0

    @property
    def tripped(self) -> bool:
        return self._tripped_at is not None

    # -- lifecycle (the agent app's lifespan) ----------------------------------------------------
    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(target=self._watch, name="capstan-agent-watchdog", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- what clients and verbs call -------------------------------------------------------------
    def beat(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._beats[client] = now
            self._last_beat = now

    def end(self, client: str) -> None:
        """The client stops beating on purpose (it closed): no trip for it."""
        with self._lock:
            self._beats.pop(client, None)

    def reset(self) -> None:
        """After the backend's resume(): the operator has decided the robot may move again."""
        with self._lock:
            self._tripped_at = None
            self._reason = None

    def check_motion(self) -> None:
        """Raises unless a motion may start now: not tripped, and someone can stop it."""
        if not self.enabled:
            return
        with self._lock:
            if self._tripped_at is not None:
                raise RobotStoppedError(
                    f"the robot agent's heartbeat watchdog stopped the robot ({self._reason}); no motion "
                    "until an operator resumes it (POST /v1/robot/resume)"
                )
            if self._thread is None or not self._thread.is_alive():
                raise RobotUnavailableError(
                    "the robot agent's heartbeat watchdog is not running, so no motion may start (serve "
                    "the agent app with its lifespan, as uvicorn does)"
                )
            now = time.monotonic()
            if not any(now - t <= self.limit_ms / 1000 for t in self._beats.values()):
                raise RobotUnavailableError(
                    f"the robot agent has no heartbeat from the service in the last {self.limit_ms} ms, so "
                    "no motion may start (nobody could stop it); RemoteRobot sends them by itself, other "
                    f"clients POST /v1/robot/heartbeat every {self.limit_ms // 4} ms"
                )

    def report(self) -> dict:
        with self._lock:
            age = None if self._last_beat is None else (time.monotonic() - self._last_beat) * 1000
            return {
                "heartbeat_ms": self.limit_ms,
                "tripped": self._tripped_at is not None,
                "tripped_at": self._tripped_at,
                "reason": self._reason,
                "last_heartbeat_age_ms": None if age is None else round(age, 1),
                "clients": len(self._beats),
            }

    # -- the watch -------------------------------------------------------------------------------
    def _watch(self) -> None:
        period = self.limit_ms / 10_000  # a tenth of the limit: trips at most 10% late
        while not self._closing.wait(period):
            self.check_heartbeats()

    def check_heartbeats(self) -> bool:
        """Trips when a client's heartbeat lapsed; True when it did now."""
        now = time.monotonic()
        limit = self.limit_ms / 1000
        with self._lock:
            lapsed = {client: now - t for client, t in self._beats.items() if now - t > limit}
            if not lapsed:
                return False
            for client in lapsed:
                del self._beats[client]  # gone: it must beat again before anything moves
            client, age = max(lapsed.items(), key=lambda item: item[1])
            reason = f"no heartbeat from client {client!r} for {age * 1000:.0f} ms, limit {self.limit_ms} ms"
            if self._tripped_at is None:
                self._tripped_at = time.time()
                self._reason = reason
        log.error("heartbeat watchdog: %s; stopping the robot (it stays stopped until resumed)", reason)
        try:
            self._stop_backend()
        except Exception:  # still tripped: check_motion refuses every motion
            log.exception("heartbeat watchdog: the backend's stop() failed")
        return True
