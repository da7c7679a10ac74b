"""The HTTP server `capstan serve` runs: uvicorn's, stopping the runs before it stops serving."""

from __future__ import annotations

import threading
from collections.abc import Callable

import uvicorn

GRACEFUL_S = 10  # at most this long for open requests once told to stop; event streams end sooner


class StoppingRunsFirst(uvicorn.Server):
    """On SIGINT or SIGTERM, e-stop every run at once (their event streams then end), and only then
    wait for connections to close: an open page must not keep a robot moving while the server
    waits for it to go away."""

    def __init__(self, config: uvicorn.Config, stop_runs: Callable[[], None]):
        super().__init__(config)
        self._stop_runs = stop_runs

    def handle_exit(self, sig, frame) -> None:
        # on a thread: this runs in a signal handler, and cancelling takes locks its thread may hold
        threading.Thread(target=self._stop_runs, name="capstan-estop-all", daemon=True).start()
        super().handle_exit(sig, frame)
