"""Reading a session's next prompt into the model before its command arrives.

Every command's request starts with the same fixed prefix (cached), then the session's scene and
earlier turns, then the command. On a small CPU model the scene and turns cost about 40 ms a token
(a one-step command's scene: over a second). They are known as soon as the session exists or its
last run ends, while the user is still typing, so the service has the model read them then: one
background thread, the most recent session only, after a short grace and only while no run is
queued or running, and the model gives way to any real call within a few tokens
(`LLMProvider.prefill`). The model holds one reading at a time, so this helps the session that was
touched last. Only simulator sessions are read ahead: a real robot's scene would cost a round trip
to its agent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from capstan.service.robots import SIM

log = logging.getLogger("capstan.service")

GRACE_S = 0.5  # a client that sends its command at once would only wait for a reading under way
LOCK_WAIT_S = 2.0


class Prefiller:
    def __init__(
        self,
        idle: Callable[[], bool],
        default_engine=None,
        on_outcome: Callable[[bool], None] | None = None,
        grace_s: float = GRACE_S,
    ):
        """`idle()`: no run is queued or running. `default_engine` serves sessions without their own.
        `on_outcome(read)` is told of each wish: read, or skipped. A wish waits `grace_s` first and
        is dropped when a run has started meanwhile (that run's end brings a new wish)."""
        self._idle = idle
        self._default_engine = default_engine
        self._on_outcome = on_outcome
        self._grace_s = grace_s
        self._cond = threading.Condition()
        self._wanted = None  # the session to read next; a newer wish replaces an older one
        self._stopping = threading.Event()
        self._interrupt = threading.Event()  # set by a newer wish or close(): the reading stops
        self._thread = threading.Thread(target=self._loop, name="capstan-prefill", daemon=True)
        self._thread.start()

    def want(self, session) -> None:
        """Read `session`'s next prompt when the service is idle; a reading under way stops."""
        with self._cond:
            self._wanted = session
            self._interrupt.set()
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping.set()
            self._interrupt.set()
            self._cond.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (session := self._next()) is not None:
            read = False
            try:
                read = self._idle() and self.prefill(session)
            except Exception:  # a prefill only saves time: it must never take the service down
                log.exception("prefill for session %s failed", getattr(session, "id", "?"))
            if self._on_outcome is not None:
                self._on_outcome(read)

    def _next(self):
        """The latest wish once it has waited its grace with no newer one (None: closing)."""
        with self._cond:
            while True:
                while self._wanted is None and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return None
                session = self._wanted
                self._cond.wait(self._grace_s)
                if self._stopping.is_set():
                    return None
                if self._wanted is session:  # no newer wish came during the grace
                    self._wanted = None
                    self._interrupt.clear()
                    return session

    def prefill(self, session) -> bool:
        """Build the session's next request from its scene and turns (under its lock, so no run
        moves things meanwhile), then have the model read it. False when it did not."""
        engine = session.engine or self._default_engine
        if engine is None or session.robot != SIM or not session.lock.acquire(timeout=LOCK_WAIT_S):
            return False
        try:
            if session.closed or session.busy:
                return False
            request = engine.next_command_lead(session.api, session.conversation)
        finally:
            session.lock.release()
        return request is not None and engine.llm.prefill(request, self._interrupt)
