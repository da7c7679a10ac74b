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
            (1.1, 101.9, 11.1),  # too short a window to tell: the last figure stands
            (2.1, 103.9, 13.1),  # all the busy time was ours
        ]
    )
    share = CpuShare(lambda: next(readings))
    assert abs(share.others() - 0.8) < 1e-9
    assert abs(share.others() - 0.8) < 1e-9
    assert share.others() < 1e-9
    assert CpuShare(lambda: None).others() is None


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
