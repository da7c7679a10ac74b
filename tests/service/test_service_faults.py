"""Faults: a sandbox worker SIGKILLed mid-run, and the whole service killed -9 and restarted."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_for_http

REPO = Path(__file__).resolve().parents[2]
SCENE = {"objects": ["red block", "blue bowl"], "seed": 7}
BUSY = "x = 0\nwhile True:\n    x = x + 1"
LONG = "while True:\n    wait(1)"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def busiest_descendant(pid: int, window_s: float = 0.6) -> int:
    """The child process burning CPU: the sandbox worker running the busy loop (idle warm workers don't)."""
    procs = descendants(pid)
    before = {p: cpu_ticks(p) for p in procs}
    time.sleep(window_s)
    delta = {p: cpu_ticks(p) - before[p] for p in procs}
    best = max(delta, key=delta.get)
    assert delta[best] > 0, "no sandbox worker is running"
    return best


def steadily_busiest_descendant(pid: int, deadline: float) -> int:
    """The same process busiest in two windows in a row: a replacement warm worker starting up
    burns CPU once, the busy loop keeps burning it."""
    previous = busiest_descendant(pid)
    while (current := busiest_descendant(pid)) != previous:
        assert time.time() < deadline, "no steadily busy sandbox worker found"
        previous = current
    return current


def test_killed_worker_fails_only_its_run(make_service, client_for):
    client = client_for(make_service(run_timeout_s=60))
    a = client.post("/v1/sessions", json={"scene": SCENE}).json()["id"]
    b = client.post("/v1/sessions", json={"scene": SCENE}).json()["id"]
    victim = client.post(f"/v1/sessions/{a}/programs", json={"code": BUSY}).json()["run_id"]
    bystander = client.post(f"/v1/sessions/{b}/programs", json={"code": "wait(1)\nsay('unharmed')"}).json()
    deadline = time.time() + 60  # generous: CI machines are shared
    while client.get(f"/v1/runs/{victim}").json()["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    worker = steadily_busiest_descendant(os.getpid(), deadline)
    os.kill(worker, signal.SIGKILL)
    while (t := client.get(f"/v1/runs/{victim}").json())["status"] == "running":
        assert time.time() < deadline, "the run did not notice its worker died"
        time.sleep(0.05)
    assert t["status"] == "failed" and t["error"]["kind"] == "crash", t["error"]
    by = client.get(f"/v1/runs/{bystander['run_id']}").json()
    while by["status"] in ("queued", "running"):
        time.sleep(0.05)
        by = client.get(f"/v1/runs/{bystander['run_id']}").json()
    assert by["status"] == "succeeded" and by["said"] == ["unharmed"]
    again = client.post(f"/v1/sessions/{a}/programs?wait=true", json={"code": "say('serving')"}).json()
    assert again["status"] == "succeeded" and again["said"] == ["serving"]
    assert client.get("/healthz").json()["status"] == "ok"


def _start(data_dir: Path, port: int, log, log_level: str = "warning", **env_vars: str) -> subprocess.Popen:
    cassette = data_dir / "empty-cassette.jsonl"
    cassette.touch()
    env = {
        **os.environ,
        "CAPSTAN_DATA_DIR": str(data_dir),
        "CAPSTAN_CASSETTE": str(cassette),
        "CAPSTAN_CASSETTE_MODE": "replay",
        "CAPSTAN_MEDIA": "0",
        "CAPSTAN_SANDBOX_POOL": "1",
        "PYTHONPATH": str(REPO),
        **env_vars,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "capstan.service.cli", "serve", "--port", str(port), "--log-level", log_level],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/healthz", proc, 60)
    return proc


@pytest.mark.slow
def test_restart_keeps_runs_and_sessions_and_marks_interrupted(tmp_path, free_port):
    base = f"http://127.0.0.1:{free_port}"
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = _start(tmp_path, free_port, log)
    try:
        sid = httpx.post(f"{base}/v1/sessions", json={"scene": SCENE}).json()["id"]
        put = "put_first_on_second('red block', 'blue bowl')\nsay('kept')"
        done = httpx.post(
            f"{base}/v1/sessions/{sid}/programs?wait=true", json={"code": put}, timeout=60
        ).json()
        assert done["status"] == "succeeded"
        moved = done["state_after"]["objects"]["red block"]["position"]
        long_id = httpx.post(f"{base}/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
        deadline = time.time() + 30
        while len(httpx.get(f"{base}/v1/runs/{long_id}").json()["primitive_calls"]) < 2:
            assert time.time() < deadline
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

        proc = _start(tmp_path, free_port, log)
        kept = httpx.get(f"{base}/v1/runs/{done['id']}").json()
        assert kept == done
        lost = httpx.get(f"{base}/v1/runs/{long_id}").json()
        assert lost["status"] == "interrupted" and lost["error"]["kind"] == "interrupted"
        assert len(lost["primitive_calls"]) >= 2  # events written before the crash are still there
        with httpx.stream("GET", f"{base}/v1/runs/{long_id}/events") as s:
            tail = "".join(s.iter_text()).strip().splitlines()
        assert tail[-2] == "event: end" and '"interrupted"' in tail[-1]
        assert {r["id"] for r in httpx.get(f"{base}/v1/runs").json()["runs"]} == {done["id"], long_id}
        # the session is back, with its id, its objects where the finished run left them, its runs
        state = httpx.get(f"{base}/v1/sessions/{sid}/state").json()
        assert math.dist(state["objects"]["red block"]["position"], moved) < 0.01
        assert {r["id"] for r in httpx.get(f"{base}/v1/sessions/{sid}/runs").json()["runs"]} == {
            done["id"],
            long_id,
        }
        again = httpx.post(
            f"{base}/v1/sessions/{sid}/programs?wait=true", json={"code": "say('back')"}, timeout=60
        ).json()
        assert again["status"] == "succeeded" and again["said"] == ["back"]
        assert httpx.delete(f"{base}/v1/sessions/{sid}").status_code == 204
        with sqlite3.connect(tmp_path / "capstan.db") as db:  # a deleted session is not brought back
            assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


@pytest.mark.slow
def test_the_access_log_never_shows_the_api_token(tmp_path, free_port):
    """The page sends the token as ?access_token= (EventSource and <img> cannot send a header);
    `capstan serve`'s access log writes the request with the token left out."""
    base = f"http://127.0.0.1:{free_port}"
    with open(tmp_path / "serve.log", "w") as log:
        proc = _start(tmp_path, free_port, log, log_level="info", CAPSTAN_API_TOKEN="s3cret-token")
        try:
            assert httpx.get(f"{base}/v1/runs?limit=3&access_token=s3cret-token").status_code == 200
            assert httpx.get(f"{base}/v1/runs?access_token=wrong").status_code == 401
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    written = (tmp_path / "serve.log").read_text()
    assert '/v1/runs?limit=3&access_token=*** HTTP/1.1" 200' in written, written[-2000:]
    assert "s3cret-token" not in written and "access_token=wrong" not in written


def test_a_store_that_fails_to_record_a_run_s_end_loses_no_worker(make_service, client_for, monkeypatch):
    """The final write of a run fails (a full disk, a lost database): the run still ends for its
    waiters, and the one worker goes on to the next run."""
    import sqlalchemy as sa

    service = make_service(max_concurrent_runs=1)
    client = client_for(service)
    sid = client.post("/v1/sessions", json={"scene": SCENE}).json()["id"]
    update_run = service.store.update_run
    failing = {"on": True}

    def update(run_id, **fields):
        if failing["on"] and "status" in fields and fields["status"] in ("succeeded", "failed"):
            raise sa.exc.OperationalError("UPDATE runs", {}, Exception("database or disk is full"))
        return update_run(run_id, **fields)

    monkeypatch.setattr(service.store, "update_run", update)
    lost = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('lost')"})
    assert lost.status_code == 200, lost.text
    failing["on"] = False
    again = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('serving')"})
    assert again.json()["status"] == "succeeded" and again.json()["said"] == ["serving"]
