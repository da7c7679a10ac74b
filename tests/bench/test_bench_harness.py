"""The harness: parallel processes, resume from the results file, errors kept as results."""

from __future__ import annotations

import json
import os
import sys

import pytest

from capstan.bench.harness import Harness, HarnessError, Job, fingerprint, load_results


# Module-level so the spawned worker processes can import them by reference.
def setup_counter(config: dict) -> dict:
    return {"pid": os.getpid(), "scale": config["scale"]}


def run_square(ctx: dict, payload: dict) -> dict:
    if payload["x"] < 0:
        raise ValueError("negative input")
    return {"value": payload["x"] ** 2 * ctx["scale"], "pid": ctx["pid"]}


def run_sleep(ctx: dict, payload: dict) -> dict:
    import time

    time.sleep(payload["s"])
    return {"slept": payload["s"]}


def make(tmp_path, workers=1, scale=1, **kw) -> Harness:
    return Harness(
        setup_counter,
        run_square,
        {"scale": scale},
        tmp_path / "r.jsonl",
        workers=workers,
        progress=False,
        **kw,
    )


def jobs(xs) -> list[Job]:
    return [Job(f"j{x}", {"x": x}) for x in xs]


def test_inline_run_returns_results_in_job_order(tmp_path):
    rows = make(tmp_path).run(jobs([3, 1, 2]))
    assert [r["id"] for r in rows] == ["j3", "j1", "j2"]
    assert [r["value"] for r in rows] == [9, 1, 4]
    assert all(r["status"] == "ok" and r["duration_s"] >= 0 for r in rows)


def test_processes_run_in_other_processes_and_share_setup(tmp_path):
    rows = make(tmp_path, workers=2).run(jobs(range(6)))
    assert [r["value"] for r in rows] == [x * x for x in range(6)]
    pids = {r["pid"] for r in rows}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_exception_in_a_job_becomes_an_error_result(tmp_path):
    rows = make(tmp_path).run(jobs([2, -1]))
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "error" and "negative input" in rows[1]["error"]
    assert "ValueError" in rows[1]["traceback"]


def test_resume_skips_done_jobs_and_appends_new_ones(tmp_path):
    make(tmp_path).run(jobs([1, 2]))
    path = tmp_path / "r.jsonl"
    path.write_text(path.read_text() + '{"id": "j9", "trunc')  # a torn last line from a crash
    lines_before = len(path.read_text().splitlines())
    rows = make(tmp_path).run(jobs([1, 2, 3]))
    assert [r["value"] for r in rows] == [1, 4, 9]
    added = path.read_text().splitlines()[lines_before:]
    assert [json.loads(line)["id"] for line in added] == ["j3"]  # only the new job ran


def test_resume_reruns_jobs_that_ended_in_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    fp = fingerprint({"scale": 1})
    path.write_text(json.dumps({"id": "j2", "status": "error", "error": "boom", "fingerprint": fp}) + "\n")
    rows = make(tmp_path).run(jobs([2]))
    assert rows[0]["status"] == "ok" and rows[0]["value"] == 4


def test_results_under_another_config_are_not_reused(tmp_path):
    make(tmp_path, scale=1).run(jobs([2]))
    rows = make(tmp_path, scale=10).run(jobs([2]))
    assert rows[0]["value"] == 40
    assert len(load_results(tmp_path / "r.jsonl", fingerprint({"scale": 10}))) == 1
    assert len(load_results(tmp_path / "r.jsonl", fingerprint({"scale": 1}))) == 1


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(HarnessError, match="unique"):
        make(tmp_path).run([Job("a", {"x": 1}), Job("a", {"x": 2})])


def test_ray_without_ray_installed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(HarnessError, match=r"pip install 'capstan\[ray\]'"):
        make(tmp_path, ray_address="auto").run(jobs([1]))


def test_ctrl_c_with_worker_processes_stops_them_at_once_and_keeps_what_finished(tmp_path):
    import signal
    import threading
    import time

    harness = Harness(setup_counter, run_sleep, {"scale": 1}, tmp_path / "r.jsonl", workers=2, progress=False)
    work = [Job("quick", {"s": 0.0}), Job("slow", {"s": 60.0}), Job("slower", {"s": 60.0})]
    threading.Timer(6.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # the terminal's Ctrl-C
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        harness.run(work)
    assert time.monotonic() - t0 < 15  # not after the slow jobs' minute
    saved = [json.loads(line)["id"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert saved == ["quick"]
