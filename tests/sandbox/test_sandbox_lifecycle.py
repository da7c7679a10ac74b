"""Workers never outlive their sandbox or their service process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from capstan.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


def _worker_pids(parent: int | None = None, recursive: bool = False) -> set[int]:
    """Sandbox worker processes (bwrap wrappers and interpreters) that are children of `parent`
    (or descendants with `recursive`), or all of them."""
    parents: dict[int, int] = {}
    workers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"capstan.sandbox.worker" in cmd:
            workers.add(pid)
    if parent is None:
        return workers

    def under(pid: int) -> bool:
        seen = 0
        while pid in parents and seen < 64:
            pid, seen = parents[pid], seen + 1
            if pid == parent:
                return True
            if not recursive:
                return False
        return False

    return {pid for pid in workers if under(pid)}


def _gone(pids: set[int], within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_close_kills_every_worker():
    box = Sandbox(pool_size=2)
    assert box.wait_ready(2, 60)
    # this box's own workers: other sandboxes in this process may be booting replacements right now
    mine = {worker.proc.pid for worker in box._pool._idle}
    assert len(mine) >= 2 and mine <= _worker_pids(os.getpid())
    box.close()
    assert _gone(mine, 5.0)


def test_workers_die_with_the_service_process():
    script = (
        "import os, threading, time\n"
        "from capstan.sandbox import Sandbox\n"
        "sb = Sandbox(pool_size=1)\n"
        "sb.wait_ready(1, 60)\n"
        "threading.Thread(target=lambda: sb.run('while True:\\n    pass', timeout_s=20), "
        "daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    workers: set[int] = set()
    try:
        service_pid = int(proc.stdout.readline())
        workers = _worker_pids(service_pid, recursive=True)
        assert len(workers) >= 2, "the service should have a running worker and a warm one"
        proc.kill()  # SIGKILL: no close(), no atexit
        proc.wait(10)
        assert _gone(workers, 5.0)
    finally:
        proc.kill()
        proc.stdout.close()
        for pid in workers & _worker_pids():  # never leave a looping worker behind, even on failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


@contextlib.contextmanager
def program_running(box: Sandbox):
    """A program that stays inside a host call for the duration of the block."""
    started = threading.Event()
    finish = threading.Event()

    def hold():
        started.set()
        finish.wait(20)
        return 1

    runner = threading.Thread(target=box.run, args=("ret_val = hold()", {"hold": hold}))
    runner.start()
    try:
        assert started.wait(20)
        yield
    finally:
        finish.set()
        runner.join(20)


def test_a_running_program_does_not_share_the_cpus_with_its_replacement_booting():
    """Two warm workers: taking one leaves one warm and boots nothing until the run ends."""
    with Sandbox(pool_size=2) as box:
        assert box.wait_ready(2, 60)
        with program_running(box):
            assert box._pool.stats() == {"idle": 1, "booting": 0, "busy": 1}
        assert box.wait_ready(2, 60)  # refilled once the run ended


def test_the_last_warm_worker_is_replaced_at_once():
    """One warm worker: taking it starts a replacement right away, so the next caller is served."""
    with Sandbox(pool_size=1) as box:
        assert box.wait_ready(1, 60)
        with program_running(box):
            assert box.wait_ready(1, 60)  # a new warm worker while the first still runs


def _nice(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, ValueError, IndexError):
        return None


def test_warm_workers_run_below_the_service_priority():
    """A worker boots right after each run, just as the next command's model call starts: it must
    give way to the model's threads (llm.cpu_share does not count niced work as competing)."""
    box = Sandbox(pool_size=1)
    try:
        assert box.wait_ready(1, 60)
        interpreters = {
            pid
            for pid in _worker_pids(os.getpid(), recursive=True)
            if b"bwrap" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        }
        assert interpreters
        assert {_nice(pid) for pid in interpreters} == {10}
    finally:
        box.close()
