"""How many threads the local model may use: as many as the cores other processes leave free.

llama.cpp's threads meet at a barrier after every layer; when other work takes a core, one thread is
descheduled and the other spins. Measured on a 2-core box: at load 12, 1 thread generated 1.9 tok/s
and 2 threads 0.16; with one other busy process (a tabletop bench beside HumanEval), 2 threads went
minutes without finishing an answer of a few hundred tokens.

Other processes' use is measured, not guessed from the load average (which counts our own threads
too): all CPU time (/proc/stat) less this process's own (/proc/self/stat) over the last fraction of a
second. Our own child processes count as others: they compete for the same cores. The user time of
niced processes does not, unless this process is niced itself: the sandbox workers and the frame
renderers run at nice 10, so a worker booting right after a run gets about a tenth of a core beside
the model's threads instead of costing them one.
"""

from __future__ import annotations

import collections
import math
import os
import threading
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
        # user, system, irq, softirq, steal; not idle or iowait, and not nice (work that gives way
        # to ours) unless we are niced ourselves, when ours is counted there
        busy = (
            fields[0]
            + fields[2]
            + sum(fields[5:8])
            + (fields[1] if os.getpriority(os.PRIO_PROCESS, 0) > 0 else 0)
        )
        return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


class CpuShare:
    """The cores other processes kept busy lately (`others()`): over the last `window_s`, from
    samples a background thread takes every `every_s`. What counts is the work that competes now:
    a burst that ended before the window (a run's video drawn by child processes just before the
    next command comes in) no longer costs the model a thread; work that goes on still does."""

    MIN_WINDOW_S = 0.2  # shorter windows hold too few clock ticks to tell: the last figure stands

    def __init__(
        self,
        read: Callable[[], CpuTimes | None] = read_cpu_times,
        window_s: float = 0.3,
        every_s: float | None = 0.1,
    ):
        """`every_s` None: no background thread, only the samples `others()` and `sample()` take."""
        self._read = read
        self.window_s = max(window_s, self.MIN_WINDOW_S)
        self._lock = threading.Lock()
        self._samples: collections.deque[CpuTimes] = collections.deque(maxlen=64)
        self._others: float | None = None
        self._stop = threading.Event()
        self.sample()
        if every_s is not None:
            threading.Thread(
                target=self._sample_every, args=(every_s,), name="capstan-cpu-share", daemon=True
            ).start()

    def sample(self) -> CpuTimes | None:
        with self._lock:  # read under the lock too, so the samples stay in time order
            now = self._read()
            if now is None:
                self._samples.clear()
            else:
                self._samples.append(now)
        return now

    def others(self) -> float | None:
        now = self.sample()
        if now is None:
            return None
        with self._lock:
            older = [s for s in self._samples if s[0] <= now[0] - self.window_s]
            then = older[-1] if older else self._samples[0]  # the latest that spans the window
            wall = now[0] - then[0]
            if wall >= self.MIN_WINDOW_S:
                busy, own = now[1] - then[1], now[2] - then[2]
                self._others = max(0.0, (busy - own) / wall)
            return self._others

    def close(self) -> None:
        self._stop.set()

    def _sample_every(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.sample()


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
