"""Run benchmark jobs in parallel with a progress bar, saving each result as it completes.

A suite gives the harness a list of `Job`s and two module-level functions (so they pickle by
reference): `setup(config) -> context`, called once per worker process, and
`run_one(context, payload) -> dict`, called per job. The harness

- skips jobs whose id already has a result in the results file (resume after an interruption:
  rerun the same command; jobs that ended in an error run again), and appends every new result
  as one JSON line as soon as it arrives;
- runs jobs inline (workers=1), over local processes (workers>1, the default is 2), or over a
  Ray cluster (`ray_address`, Ray imported lazily);
- turns an exception in `run_one` into a result with `status: "error"` instead of losing the job,
  and restarts the process pool if a worker process dies (its in-flight jobs are retried once).

Every result line carries the config `fingerprint`: a result recorded under another model or
cassette is not reused.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib
import json
import multiprocessing
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capstan.service.config import ConfigError

SetupFn = Callable[[dict], Any]
RunFn = Callable[[Any, dict], dict]


class HarnessError(ConfigError):
    """A benchmark cannot run as configured (the message says how to fix it)."""


@dataclass(frozen=True)
class Job:
    id: str
    payload: dict


def fingerprint(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_results(path: Path, fp: str) -> dict[str, dict]:
    """Finished results in `path` for this fingerprint. A torn last line is ignored, and so are
    `status: "error"` rows (an exception, a cassette miss): those jobs run again on resume."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("fingerprint") == fp and "id" in row:
            if row.get("status") == "error":
                done.pop(row["id"], None)
            else:
                done[row["id"]] = row
    return done


# --- worker side -------------------------------------------------------------------------------

_CONTEXT: dict[str, Any] = {}


def _context(setup: SetupFn, config: dict) -> Any:
    key = fingerprint({"setup": f"{setup.__module__}.{setup.__qualname__}", **config})
    if key not in _CONTEXT:
        _CONTEXT.clear()
        _CONTEXT[key] = setup(config)
    return _CONTEXT[key]


def execute(setup: SetupFn, run_one: RunFn, config: dict, job: Job) -> dict:
    """Run one job in this process; never raises for a failure of the job itself."""
    start = time.perf_counter()
    try:
        result = dict(run_one(_context(setup, config), job.payload))
        result.setdefault("status", "ok")
    except Exception as exc:  # noqa: BLE001 - a bug or infrastructure error: keep it visible in the results
        result = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    result["id"] = job.id
    result["duration_s"] = round(time.perf_counter() - start, 3)
    return result


# --- driver side -------------------------------------------------------------------------------


@dataclass
class Harness:
    setup: SetupFn
    run_one: RunFn
    config: dict
    results_path: Path
    workers: int = 2
    ray_address: str | None = None
    progress: bool = True
    desc: str = "bench"

    def run(self, jobs: Iterable[Job]) -> list[dict]:
        """Run every job not done yet; return the results of all `jobs` in their order."""
        jobs = list(jobs)
        ids = [j.id for j in jobs]
        if len(set(ids)) != len(ids):
            raise HarnessError("job ids must be unique")
        fp = fingerprint(self.config)
        done = load_results(self.results_path, fp)
        pending = [j for j in jobs if j.id not in done]
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        bar = _progress(len(jobs), len(jobs) - len(pending), self.desc, self.progress)
        _end_torn_line(self.results_path)
        try:
            with open(self.results_path, "a", encoding="utf-8") as sink:

                def record(result: dict) -> None:
                    result["fingerprint"] = fp
                    sink.write(json.dumps(result, default=str) + "\n")
                    sink.flush()
                    done[result["id"]] = result
                    bar.update(1)

                if not pending:
                    pass
                elif self.ray_address:
                    self._run_ray(pending, record)
                elif self.workers <= 1:
                    for job in pending:
                        record(execute(self.setup, self.run_one, self.config, job))
                else:
                    self._run_processes(pending, record)
        except KeyboardInterrupt:
            bar.close()
            print(
                f"\ninterrupted: {len(done)} of {len(jobs)} results saved in {self.results_path}; "
                "rerun the same command to resume",
                file=sys.stderr,
            )
            raise
        bar.close()
        return [done[i] for i in ids]

    def _run_processes(self, pending: list[Job], record: Callable[[dict], None]) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited model/sockets/threads
        attempts: dict[str, int] = {}
        queue = list(pending)
        while queue:
            crashed: list[Job] = []
            with cf.ProcessPoolExecutor(max_workers=min(self.workers, len(queue)), mp_context=ctx) as pool:
                futures = {pool.submit(execute, self.setup, self.run_one, self.config, j): j for j in queue}
                try:
                    for fut in cf.as_completed(futures):
                        job = futures[fut]
                        try:
                            record(fut.result())
                        except cf.process.BrokenProcessPool:
                            crashed.append(job)
                except KeyboardInterrupt:  # stop the workers first: shutdown() forgets them
                    _terminate(pool)
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
            queue = []
            for job in crashed:
                attempts[job.id] = attempts.get(job.id, 0) + 1
                if attempts[job.id] >= 2:
                    record({"id": job.id, "status": "error", "error": "worker process died (twice)"})
                else:
                    queue.append(job)

    def _run_ray(self, pending: list[Job], record: Callable[[dict], None]) -> None:
        try:
            ray = importlib.import_module("ray")
        except ImportError:
            raise HarnessError("--ray needs Ray installed: pip install 'capstan[ray]'") from None
        connected_here = not ray.is_initialized()
        _probe(self.ray_address)
        try:
            ray.init(address=self.ray_address, ignore_reinit_error=True, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise _unreachable(self.ray_address, exc) from None
        try:
            # a worker process that dies mid-job is retried once, as with local workers
            remote = ray.remote(max_retries=1)(execute)
            refs = {remote.remote(self.setup, self.run_one, self.config, job): job for job in pending}
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    job = refs.pop(ref)
                    try:
                        record(ray.get(ref))
                    except Exception as exc:  # noqa: BLE001 - the Ray task itself failed (node lost, ...)
                        record(
                            {"id": job.id, "status": "error", "error": f"ray: {type(exc).__name__}: {exc}"}
                        )
        finally:
            if connected_here:
                ray.shutdown()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port nobody listens on (`ray.init` would retry it for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray resolves and reports those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise _unreachable(address, exc) from None


def _unreachable(address: str, exc: Exception) -> HarnessError:
    return HarnessError(
        f"cannot reach the Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
        "or pass its address (host:port, or auto for the local one)"
    )


def _end_torn_line(path: Path) -> None:
    """A crash can leave half a line at the end; start the next result on a fresh line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, unit="job", dynamic_ncols=True)


def default_workers() -> int:
    raw = os.environ.get("CAPSTAN_BENCH_WORKERS", "2")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise HarnessError(f"CAPSTAN_BENCH_WORKERS={raw!r}: use a whole number of at least 1")
    return int(raw)
