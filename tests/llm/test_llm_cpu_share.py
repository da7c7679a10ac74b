"""The local model's threads: as many as the cores other processes leave free (llm.cpu_share)."""

from __future__ import annotations

import subprocess
import sys
import time

from capstan.llm.cpu_share import CpuShare, threads_beside, threads_for_load


def test_threads_are_the_cores_others_leave():
    assert threads_beside(2, others=0.0, cpus=2) == 2
    assert threads_beside(2, others=0.4, cpus=2) == 2  # a little background work
    assert threads_beside(2, others=0.7, cpus=2) == 1  # one busy process beside us: one core is ours
    assert threads_beside(2, others=1.0, cpus=2) == 1
    assert threads_beside(2, others=6.0, cpus=2) == 1  # never none
    assert threads_beside(4, others=2.0, cpus=8) == 4
    assert threads_beside(8, others=2.0, cpus=8) == 6
    assert threads_beside(1, others=0.0, cpus=8) == 1


def test_without_proc_the_load_average_guesses():
    assert threads_for_load(2, load_1min=0.3, cpus=2) == 2
    assert threads_for_load(2, load_1min=2.9, cpus=2) == 2  # our own two threads alone
    assert threads_for_load(2, load_1min=12.0, cpus=2) == 1
    assert threads_for_load(1, load_1min=0.0, cpus=8) == 1


def test_others_are_all_cpu_time_less_our_own():
    readings = iter(
        [
            (0.0, 100.0, 10.0),
            (1.0, 101.8, 11.0),  # 1.8 core-seconds busy in 1 s, 1.0 of them ours: others 0.8
            (1.1, 101.9, 11.1),  # no sample 0.3 s old but the first: the window is 1.1 s
            (2.1, 103.9, 13.1),  # the window starts at 1.1, and all the busy time since was ours
        ]
    )
    share = CpuShare(lambda: next(readings), every_s=None)
    assert abs(share.others() - 0.8) < 1e-9
    assert abs(share.others() - 0.8 / 1.1) < 1e-9
    assert share.others() < 1e-9
    assert CpuShare(lambda: None, every_s=None).others() is None
    early = iter([(0.0, 100.0, 10.0), (0.1, 100.2, 10.0)])
    assert CpuShare(lambda: next(early), every_s=None).others() is None  # 0.1 s: too few ticks to tell


def test_a_burst_that_ended_before_the_window_does_not_count():
    """Two child processes drew a run's video for half a second; the next command comes 0.4 s
    later: the last 0.3 s are what tells the model how many cores it has."""
    clock = {"t": 0.0, "busy": 0.0, "own": 0.0}
    share = CpuShare(lambda: (clock["t"], clock["busy"], clock["own"]), every_s=None)
    for _ in range(5):  # the burst: 2 cores busy, none of it ours
        clock["t"] += 0.1
        clock["busy"] += 0.2
        share.sample()
    for _ in range(4):  # quiet: a little of our own bookkeeping
        clock["t"] += 0.1
        clock["busy"] += 0.01
        clock["own"] += 0.01
        share.sample()
    others = share.others()
    assert others is not None and others < 0.05
    assert threads_beside(2, others, cpus=2) == 2


def test_the_background_sampler_keeps_the_window_recent():
    share = CpuShare(window_s=0.3, every_s=0.05)
    try:
        time.sleep(0.5)
        with share._lock:
            ages = [time.monotonic() - s[0] for s in share._samples]
        assert len(ages) >= 5 and min(ages) < 0.2
    finally:
        share.close()


def test_a_busy_process_beside_us_is_seen():
    share = CpuShare()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        others = share.others()
    finally:
        busy.kill()
        busy.wait()
    assert others is not None and others >= 0.6, others
