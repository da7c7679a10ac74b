"""Helpers for tests that start a server process of their own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

# A robot agent served in the test process shares the GIL with the service and the test: building a
# PyBullet world holds it for ~0.2 s, which at the agent's default 250 ms heartbeat limit can starve
# heartbeats. Tests that are not about the watchdog use this limit, out of such stalls' reach;
# tests/service/test_robot_watchdog.py tests the default.
RELAXED_HEARTBEAT_MS = 2000


def wait_for_http(url: str, proc: subprocess.Popen, timeout_s: float, log: Callable[[], str] = str):
    """The first 200 response of GET `url` from the server `proc` runs; fails when the process
    exits first or nothing answers within `timeout_s` (`log()` says why)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[:4]} exited with {proc.returncode}: {log()[-2000:]}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nothing answered on {url} within {timeout_s:.0f} s: {log()[-2000:]}")
        time.sleep(0.2)
