"""Heartbeats from a RemoteRobot to its robot agent: proof, four times per watchdog limit, that the
service is still there to stop the robot (the agent's watchdog stops it when they lapse; see
capstan.service.agent_watchdog and docs/CONTRACTS.md "Robot agent protocol").

They come from a child process of their own (capstan.primitives.heartbeat_beater), not a thread:
the service's process can hold Python's lock for hundreds of milliseconds (a PyBullet twin being
built), which would make a thread's beats late and the agent stop a healthy robot. Neither a motion
in flight nor a program busy elsewhere delays them either. A failed heartbeat is counted, never
raised: the agent is the one that acts on silence. The child falls silent when this process dies.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("capstan.heartbeat")

HEARTBEAT_PATH = "/v1/robot/heartbeat"
_BEATER = Path(__file__).with_name("heartbeat_beater.py")


class HeartbeatSender:
    """Beats `client_id` to the agent at `url` every `period_s` from start() until close(), which
    also tells the agent that this client leaves on purpose. Each beat waits at most `timeout_s`."""

    def __init__(self, url: str, headers: dict, client_id: str, period_s: float, timeout_s: float):
        self.client_id = client_id
        self.period_s = period_s
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None
        self.agent_tripped = False  # what the agent's watchdog said in its last answer
        config = {"url": url, "headers": headers, "client": client_id, "period_s": period_s}
        self._env = {**os.environ, "CAPSTAN_HEARTBEAT": json.dumps({**config, "timeout_s": timeout_s})}
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._closed or self._proc is not None:
            raise RuntimeError("a HeartbeatSender starts once, before close()")
        # -I -S: the standard library only, so the child beats within tens of milliseconds
        self._proc = subprocess.Popen(  # noqa: S603 - our own script, by path
            [sys.executable, "-I", "-S", str(_BEATER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self._env,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"capstan-heartbeat-{self.client_id}", daemon=True
        )
        self._reader.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        try:  # a clean goodbye, so the agent's watchdog does not take the silence for a lost link
            if proc.stdin is not None:
                proc.stdin.write("bye\n")
                proc.stdin.close()
            proc.wait(timeout=4 * self.period_s + 5)  # a beat in flight, then the goodbye
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def _read(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            self._report(line.strip())

    def _report(self, line: str) -> None:
        if line.startswith("ok"):
            self.sent += 1
            self.agent_tripped = line.endswith("1")
            if self.last_error is not None:
                log.info("heartbeats reach the robot agent again after %d failures", self.failures)
                self.last_error = None
            return
        self.failures += 1
        if self.last_error is None:
            log.warning("heartbeat to the robot agent failed: %s", line.removeprefix("fail "))
        self.last_error = line.removeprefix("fail ")
