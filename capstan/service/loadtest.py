"""Load test on loopback: concurrent sessions replay recorded LLM answers against a real `capstan serve`.

    python -m capstan.service.loadtest [--sessions 8] [--runs 3] [--cap-s 120] [--cassette PATH] [--json]

1. Cassette. Without --cassette, one is recorded first, in process, by running the same workload
   with a scripted responder (a test double that writes the obvious program for each command)
   wrapped in `llm.cassette.CassetteProvider(record)`. `--record-with-model` records from the
   provider `CAPSTAN_LLM` selects (the local model by default) instead.
2. Replay. `capstan serve` starts in a subprocess on a free loopback port with
   CAPSTAN_CASSETTE=<cassette> CAPSTAN_CASSETTE_MODE=replay; one client thread per session creates
   its session (its own objects: every session has different colors) and sends its commands one
   after another with ?wait=true. The whole load is bounded by --cap-s.
3. Checks. Every run must be stored, succeed, belong to its session, carry its own command, and
   mention only its own session's objects (primitive-call arguments, speech, final state); each
   session lists exactly its runs. Reports throughput and p50/p99 latency; exit status 1 on any
   lost, failed or mixed run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "cyan", "brown", "gray", "white")
REPO = Path(__file__).resolve().parents[1]


def workload(sessions: int, runs: int) -> list[dict]:
    """Per session: its scene (distinct colors) and its commands."""
    if sessions > len(COLORS):
        raise ValueError(f"at most {len(COLORS)} sessions (one block color each)")
    out = []
    for i in range(sessions):
        block, bowl = f"{COLORS[i]} block", f"{COLORS[(i + 3) % len(COLORS)]} bowl"
        commands = [
            f"put the {block} in the {bowl}",
            f"tell me where the {block} is",
            f"pick up the {block} and put it back in the {bowl}",
        ]
        out.append(
            {
                "scene": {"objects": [block, bowl], "seed": i},
                "objects": {block, bowl},
                "commands": [commands[k % len(commands)] for k in range(runs)],
            }
        )
    return out


def scripted_answer(request) -> str:
    """The scripted responder: the obvious program for each workload command."""
    text = request.messages[-1].content.rsplit("# command:", 1)[-1]
    cmds = re.findall(
        r"(put the|tell me where the|pick up the) (\w+ block)(?: is| in the| and put it back in the)?"
        r" ?(\w+ bowl)?",
        text,
    )
    if not cmds:
        return "```python\nsay('I do not know that command')\n```"
    verb, block, bowl = cmds[-1]
    if verb == "put the":
        code = f"put_first_on_second('{block}', '{bowl}')\nsay('the {block} is in the {bowl}')"
    elif verb == "tell me where the":
        code = f"pos = get_obj_pos('{block}')\nsay('the {block} is at x=' + str(round(float(pos[0]), 2)))"
    else:
        code = f"pick('{block}')\nplace('{bowl}')\nsay('put the {block} back in the {bowl}')"
    return f"```python\n{code}\n```"


def record(cassette: Path, plan: list[dict], with_model: bool) -> None:
    """Run the workload once in process, recording every LLM answer into `cassette`."""
    from capstan import llm
    from capstan.llm.cassette import CassetteProvider
    from capstan.llm.scripted import ScriptedProvider
    from capstan.service.config import Settings
    from capstan.service.service import Service

    n_calls = sum(len(p["commands"]) for p in plan) * 4
    from capstan.llm.config import model_name

    # the replaying server keys answers by the model name CAPSTAN_LLM selects: record under that name
    inner = (
        llm.from_config(os.environ)
        if with_model
        else ScriptedProvider([scripted_answer] * n_calls, model=model_name(os.environ))
    )
    provider = CassetteProvider(cassette, "record", inner=inner)
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(
            Settings.from_env({}, data_dir=Path(tmp), media=False, max_sessions=len(plan)), llm=provider
        )
        try:
            for p in plan:
                session = service.sessions.create("sim", p["scene"])
                for command in p["commands"]:
                    run = service.runs.submit(session, "command", command)
                    run.done.wait()
        finally:
            service.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    cassette: Path, data_dir: Path, sessions: int, concurrency: int, log
) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "CAPSTAN_DATA_DIR": str(data_dir),
        "CAPSTAN_CASSETTE": str(cassette),
        "CAPSTAN_CASSETTE_MODE": "replay",
        "CAPSTAN_MEDIA": "0",
        "CAPSTAN_MAX_SESSIONS": str(sessions),
        "CAPSTAN_MAX_CONCURRENT_RUNS": str(concurrency),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter serving our own package
        [sys.executable, "-m", "capstan.service.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"capstan serve exited with status {proc.returncode}; see {log.name}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("capstan serve did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def drive(url: str, plan: list[dict], cap_s: float) -> list[dict]:
    """One client thread per session; returns one record per run sent."""
    import httpx

    results: list[dict] = []
    lock = threading.Lock()
    deadline = time.time() + cap_s

    def client(i: int, p: dict) -> None:
        with httpx.Client(base_url=url, timeout=max(1.0, deadline - time.time())) as http:
            try:
                sid = http.post("/v1/sessions", json={"scene": p["scene"]}).raise_for_status().json()["id"]
            except httpx.HTTPError as exc:
                with lock:
                    results.append({"session": i, "error": f"create session: {exc}"})
                return
            for command in p["commands"]:
                rec = {"session": i, "session_id": sid, "command": command}
                t0 = time.perf_counter()
                try:
                    left = deadline - time.time()
                    if left <= 0:
                        raise TimeoutError("load-test time cap reached before this run was sent")
                    r = http.post(
                        f"/v1/sessions/{sid}/commands?wait=true", json={"text": command}, timeout=left
                    )
                    rec.update(status_code=r.status_code, trace=r.json())
                except (httpx.HTTPError, TimeoutError) as exc:
                    rec["error"] = f"{type(exc).__name__}: {exc}"
                rec["latency_s"] = time.perf_counter() - t0
                with lock:
                    results.append(rec)

    from tqdm import tqdm

    threads = [threading.Thread(target=client, args=(i, p)) for i, p in enumerate(plan)]
    for t in threads:
        t.start()
    total = sum(len(p["commands"]) for p in plan)
    with tqdm(total=total, desc="runs", unit="run", file=sys.stderr, leave=False) as bar:
        while any(t.is_alive() for t in threads) and time.time() < deadline + 5:
            time.sleep(0.2)
            with lock:
                bar.update(len(results) - bar.n)
    for t in threads:
        t.join(max(0.0, deadline - time.time()) + 5)
    return results


def mentioned_objects(trace: dict) -> set[str]:
    names: set[str] = set((trace.get("state_after") or {}).get("objects", {}))
    text = json.dumps([trace.get("primitive_calls"), trace.get("said"), trace.get("code")])
    names |= set(re.findall(r"\b(?:" + "|".join(COLORS) + r") (?:block|bowl)\b", text))
    return names


def verify(url: str, plan: list[dict], results: list[dict]) -> dict:
    """Compare what the clients saw with what the service stored; count problems."""
    import httpx

    problems: list[str] = []
    expected = sum(len(p["commands"]) for p in plan)
    done = [r for r in results if "trace" in r]
    problems += [f"session {r['session']}: {r['error']}" for r in results if "error" in r]
    stored = httpx.get(f"{url}/v1/runs?limit=500").json()["runs"]
    by_session: dict[str, list[str]] = {}
    for r in done:
        t = r["trace"]
        own = plan[r["session"]]["objects"]
        by_session.setdefault(r["session_id"], []).append(t.get("id"))
        if t.get("status") != "succeeded":
            problems.append(f"run {t.get('id')} {t.get('status')}: {t.get('error')}")
        if t.get("session_id") != r["session_id"] or t.get("command") != r["command"]:
            problems.append(f"run {t.get('id')} is mixed up: session/command do not match what was sent")
        foreign = mentioned_objects(t) - own
        if foreign:
            problems.append(
                f"run {t.get('id')} of session {r['session']} mentions other objects: {sorted(foreign)}"
            )
    for sid, ids in by_session.items():
        listed = [x["id"] for x in httpx.get(f"{url}/v1/sessions/{sid}/runs").json()["runs"]]
        if sorted(listed) != sorted(ids):
            problems.append(f"session {sid} lists runs {listed}, the client got {ids}")
    lost = expected - len(done)
    if len(stored) != expected:
        problems.append(f"the store holds {len(stored)} runs, {expected} were sent")
    return {
        "expected_runs": expected,
        "completed_runs": len(done),
        "lost_runs": lost,
        "stored_runs": len(stored),
        "problems": problems,
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m capstan.service.loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3, help="commands per session, sent one after another")
    ap.add_argument("--cap-s", type=float, default=120.0, help="time cap for the whole replay phase")
    ap.add_argument("--concurrency", type=int, default=2, help="CAPSTAN_MAX_CONCURRENT_RUNS of the server")
    ap.add_argument("--cassette", type=Path, help="replay this cassette instead of recording one first")
    ap.add_argument("--record-with-model", action="store_true", help="record from CAPSTAN_LLM, not a script")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)

    plan = workload(args.sessions, args.runs)
    with tempfile.TemporaryDirectory(prefix="capstan-load-") as tmp:
        tmp = Path(tmp)
        cassette = args.cassette
        if cassette is None:
            cassette = tmp / "cassette.jsonl"
            t0 = time.time()
            print(
                f"recording the cassette ({'model' if args.record_with_model else 'scripted'})...",
                file=sys.stderr,
            )
            record(cassette, plan, args.record_with_model)
            print(f"  recorded in {time.time() - t0:.1f}s", file=sys.stderr)
        with open(tmp / "serve.log", "w") as log:
            proc, url = start_server(cassette, tmp / "data", args.sessions, args.concurrency, log)
            try:
                t0 = time.perf_counter()
                results = drive(url, plan, args.cap_s)
                wall = time.perf_counter() - t0
                report = verify(url, plan, results)
            finally:
                stop_server(proc)
    latencies = [r["latency_s"] for r in results if "trace" in r]
    report.update(
        sessions=args.sessions,
        runs_per_session=args.runs,
        concurrency=args.concurrency,
        wall_s=round(wall, 3),
        throughput_runs_per_s=round(len(latencies) / wall, 3) if wall else None,
        latency_p50_s=percentile(latencies, 0.50),
        latency_p99_s=percentile(latencies, 0.99),
        latency_max_s=max(latencies) if latencies else None,
        ok=not report["problems"],
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['completed_runs']}/{report['expected_runs']} runs in {report['wall_s']} s "
            f"({report['throughput_runs_per_s']} runs/s), latency p50 {report['latency_p50_s']:.2f} s, "
            f"p99 {report['latency_p99_s']:.2f} s; lost {report['lost_runs']}; problems "
            f"{len(report['problems'])}"
        )
        for p in report["problems"]:
            print("  " + p)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
