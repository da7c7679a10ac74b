"""How many threads the local model may use: as many as the cores other processes leave free.

llama.cpp's threads meet at a barrier after every layer; when other work takes a core, one thread is
descheduled and the other spins. Measured on a 2-core box: at load 12, 1 thread generated 1.9 tok/s
and 2 threads 0.16; with one other busy process (a tabletop bench beside HumanEval), 2 threads went
minutes without finishing an answer of a few hundred tokens.

Other processes' use is measured, not guessed from the load average (which counts our own threads
too): all CPU time (/proc/stat) less this process's own (/proc/self/stat) over the wall time since the
last look. Our own child processes (sandbox workers, frame renderers) count as others: they compete
for the same cores.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

CpuTimes = tuple[float, float, float]  # (monotonic s, CPU s busy on all cores, CPU s of this process)


def read_cpu_times() -> CpuTimes | None:
    """Now, all cores' busy CPU seconds, and this process's; None where /proc cannot tell."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (not idle, iowait)
        return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


class CpuShare:
    """The cores other processes kept busy since the previous look (`others()`)."""

    MIN_WINDOW_S = 0.2  # shorter windows hold too few clock ticks to tell: the last figure stands

    def __init__(self, read: Callable[[], CpuTimes | None] = read_cpu_times):
        self._read = read
        self._last = read()
        self._others: float | None = None

    def others(self) -> float | None:
        now = self._read()
        if now is None or self._last is None:
            self._last = now
            return None
        wall = now[0] - self._last[0]
        if wall >= self.MIN_WINDOW_S:
            busy, own = now[1] - self._last[1], now[2] - self._last[2]
            self._others = max(0.0, (busy - own) / wall)
            self._last = now
        return self._others


def threads_beside(max_threads: int, others: float, cpus: int) -> int:
    """Threads to use while other processes keep `others` cores busy: all of them while the others
    use less than half a core; else one per core the others leave (at least one)."""
    if max_threads <= 1:
        return max(1, max_threads)
    free = cpus - max(0, math.ceil(others - 0.5))
    return max(1, min(max_threads, free))


def threads_for_load(max_threads: int, load_1min: float, cpus: int) -> int:
    """Where /proc cannot tell others' use apart: guess from the load average, which counts our own
    run too (~`max_threads`), so only load beyond cpus + 1 counts as others' work."""
    if max_threads <= 1:
        return max(1, max_threads)
    return 1 if load_1min > cpus + 1 else max_threads
