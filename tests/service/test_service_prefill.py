"""When the service reads ahead: after a grace with no newer wish, and only while no run goes.
What the model does with a reading is tested with the real model in tests/llm/test_llm_local.py
and end to end in tests/service/test_service_model.py."""

from __future__ import annotations

import threading
import time

from capstan.service.prefill import Prefiller


class Recording(Prefiller):
    """The scheduler as the service runs it; the reading itself only noted."""

    def __init__(self, idle, grace_s=0.2):
        self.read: list[str] = []
        self.outcomes: list[bool] = []
        self.done = threading.Event()
        super().__init__(idle, on_outcome=self._outcome, grace_s=grace_s)

    def prefill(self, session) -> bool:
        self.read.append(session)
        return True

    def _outcome(self, read: bool) -> None:
        self.outcomes.append(read)
        self.done.set()


def wait_for_outcome(p: Recording) -> None:
    assert p.done.wait(5)
    p.done.clear()


def test_the_latest_wish_is_read_after_its_grace():
    p = Recording(lambda: True)
    try:
        t0 = time.monotonic()
        p.want("a")
        time.sleep(0.05)
        p.want("b")  # a newer session: 'a' is never read
        wait_for_outcome(p)
        assert p.read == ["b"] and p.outcomes == [True]
        assert time.monotonic() - t0 >= 0.2
    finally:
        p.close()


def test_a_run_that_started_during_the_grace_means_no_reading():
    running = threading.Event()
    p = Recording(lambda: not running.is_set())
    try:
        p.want("a")
        running.set()  # the client sent its command at once
        wait_for_outcome(p)
        assert p.read == [] and p.outcomes == [False]
    finally:
        p.close()


def test_close_ends_the_thread_even_with_a_wish_pending():
    p = Recording(lambda: True, grace_s=10)
    p.want("a")
    t0 = time.monotonic()
    p.close()
    assert time.monotonic() - t0 < 2 and not p._thread.is_alive() and p.read == []
