"""Helpers for tests that start a server process of their own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest


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
