"""Heartbeats from a RemoteRobot to its robot agent: proof, four times per watchdog limit, that the
service is still there to stop the robot (the agent's watchdog stops it when they lapse; see
capstan.service.agent_watchdog and docs/CONTRACTS.md "Robot agent protocol").

They come from a daemon thread with its own HTTP client, so neither a motion in flight nor a
program busy elsewhere (a nested LLM call can take seconds) delays them. A failed heartbeat is
counted, never raised: the agent is the one that acts on silence.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

log = logging.getLogger("capstan.heartbeat")

HEARTBEAT_PATH = "/v1/robot/heartbeat"


class HeartbeatSender:
    """Beats `client_id` to the agent behind `http` every `period_s` from start() until close(),
    which also tells the agent that this client leaves on purpose. It owns `http` and closes it."""

    def __init__(self, http: httpx.Client, client_id: str, period_s: float):
        self.client_id = client_id
        self.period_s = period_s
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None
        self.agent_tripped = False  # what the agent's watchdog said in its last answer
        self._http = http
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._closed or self._thread is not None:
            raise RuntimeError("a HeartbeatSender starts once, before close()")
        self._thread = threading.Thread(
            target=self._run, name=f"capstan-heartbeat-{self.client_id}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._thread is not None:
            self._thread.join(12 * self.period_s + 1)  # a beat in flight times out (connect, write, read)
        try:  # a clean goodbye, so the agent's watchdog does not take the silence for a lost link
            self._http.post(HEARTBEAT_PATH, json={"client": self.client_id, "end": True})
        except httpx.HTTPError:
            pass  # unreachable: its watchdog trips, which is what a lost link should do
        finally:
            self._http.close()

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            due += self.period_s
            # a slow beat does not push the next one later: the schedule is fixed, not the gaps
            if self._closing.wait(max(0.0, due - time.monotonic())):
                return
            due = max(due, time.monotonic() - self.period_s)  # after a long stall, no burst of beats
            self._beat()

    def _beat(self) -> None:
        try:
            response = self._http.post(HEARTBEAT_PATH, json={"client": self.client_id})
            response.raise_for_status()
            self.agent_tripped = bool(response.json().get("tripped"))
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            self.failures += 1
            if self.last_error is None:
                log.warning("heartbeat to the robot agent failed: %s: %s", type(exc).__name__, exc)
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self.sent += 1
        if self.last_error is not None:
            log.info("heartbeats reach the robot agent again after %d failures", self.failures)
            self.last_error = None
