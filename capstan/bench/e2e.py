"""`capstan bench e2e`: what a user waits for, end to end over HTTP, and what the service holds.

A Capstan service starts in this process on loopback (uvicorn in a thread, media on, the model
`CAPSTAN_LLM` selects; the local one by default) and gets a fixed set of commands over HTTP:

- `simple`: one-step pick-and-place commands, each in a fresh session, posted as soon as the session
  exists; `simple_after_pause`: the same, posted `--pause` seconds after the session was created,
  as by a user who looks at the scene before typing (the service reads the scene into the model
  meanwhile: CAPSTAN_PREFILL);
- `compositional`: commands that take several steps (a tower, a row, sorting by colour);
- `multi_turn`: one session, turns that refer back to earlier ones.

Each command's clock runs from its `POST .../commands?wait=true` until its video URLs have been
served (GIF and MP4 fetched), and is split from the trace into LLM, sandbox (checks, dry runs,
running the program, the service's bookkeeping), motion (control primitives), media (drawing
frames, encoding the videos, serving them) and HTTP. One warm-up command goes first (its time is
reported on its own: the first one reads the model and its cached prompt prefix). The simple
commands run again, in a pass of their own, on a second service with media off, in the same
process and with the same model (that service reads nothing ahead, so it never holds the model while
the first one reads a new session's scene). Each simple command's pick-and-place also runs headless on a bare
simulator with the same scene, for the motion's ratio to headless.

Memory first (skip it with `--no-memory`), while only the media-on service runs: PSS summed over
this process (the service and the model) and its children, after start, with 8 sessions that each
ran a program, and after `--programs` (200) one-line pick-and-place programs spread over those 8
sessions (8 clients at once, media on; their throughput is reported too). Those sessions are
deleted before the commands run.

Load (`load`): 8 new sessions get 5 one-line pick-and-place programs each, all 40 submitted at once
without waiting (media on); a client refused with 429 waits the Retry-After it is given and submits
again. Reported: runs per second from the first submission to the last run's end, 429s, and runs
lost, failed or mixed up (a trace in another session, with another program, or touching another
session's objects).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from capstan.bench.memory import pss_mb
from capstan.service.loadtest import mentioned_objects, percentile

# Written for this bench (not from the prompts or the task suites); the scenes are seeded.
SIMPLE = (
    (["red block", "green block", "blue bowl", "yellow bowl"], "put the red block in the blue bowl"),
    (["orange block", "pink block", "green bowl"], "drop the pink block into the green bowl"),
    (["blue block", "yellow block", "red bowl"], "place the yellow block on top of the blue block"),
    (["green block", "purple block", "orange bowl"], "move the green block to the orange bowl"),
    (["white block", "red block", "blue bowl"], "set the white block on the red block"),
)
COMPOSITIONAL = (
    (["red block", "green block", "blue block", "yellow bowl"], "build one tower out of all three blocks"),
    (
        ["red block", "blue block", "red bowl", "blue bowl"],
        "sort the blocks into the bowls by colour",
    ),
    (["orange block", "pink block", "white block"], "line the blocks up along the top side, evenly spaced"),
)
MULTI_TURN = (
    ["red block", "green block", "blue block", "green bowl"],
    (
        "put the red block in the green bowl",
        "now stack the blue block on the green block",
        "move that tower's top block to the bottom left corner",
    ),
)
MEMORY_SESSIONS = 8
PAUSE_S = 3.0  # a user looking at a new scene before the first command
PROGRAM_OBJECTS = ["red block", "blue bowl", "yellow bowl"]


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--repeats", type=int, default=1, metavar="N", help="run the command set N times (default 1)"
    )
    parser.add_argument(
        "--programs", type=int, default=200, metavar="N", help="programs for the memory figure (default 200)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory phase")
    parser.add_argument(
        "--pause",
        type=float,
        default=PAUSE_S,
        metavar="S",
        help=f"seconds from a session's creation to its command in simple_after_pause (default {PAUSE_S})",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="also write e2e.json here")


# --- measuring -----------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(value, 3)


def split_of(trace: dict, wall_s: float, fetch_s: float) -> dict:
    """Where a command's time went, from its trace (seconds); the parts add up to `wall_s`."""
    from capstan.primitives.api import MOTION_NAMES

    timings = trace.get("timings") or {}
    llm = sum(float(c.get("latency_s") or 0) for c in trace.get("llm_calls") or [])
    motion = sum(
        float(c["t_end"]) - float(c["t_start"])
        for c in trace.get("primitive_calls") or []
        if c.get("name") in MOTION_NAMES and c.get("t_end") and c.get("t_start")
    )
    media = float(timings.get("media_s") or 0)  # drawing frames and writing videos, in the run
    total = float(timings.get("total_s") or 0)
    return {
        "llm_s": round(llm, 3),
        "sandbox_s": round(max(0.0, total - llm - motion - media), 3),
        "motion_s": round(motion, 3),
        "media_s": round(media + fetch_s, 3),
        "http_s": round(max(0.0, wall_s - total - fetch_s), 3),
    }


class Client:
    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(900.0, connect=10.0))

    def session(self, objects: list[str], seed: int) -> str:
        r = self.http.post("/v1/sessions", json={"robot": "sim", "scene": {"objects": objects, "seed": seed}})
        r.raise_for_status()
        return r.json()["id"]

    def timed(self, sid: str, kind: str, body: dict) -> dict:
        """One run, clocked until its media are served; its trace, wall time and split."""
        t0 = time.perf_counter()
        r = self.http.post(f"/v1/sessions/{sid}/{kind}", params={"wait": "true"}, json=body)
        r.raise_for_status()
        trace = r.json()
        t_fetch = time.perf_counter()
        media = trace.get("media") or {}
        for key in ("gif", "mp4"):
            if media.get(key):
                self.http.get(media[key]).raise_for_status()
        t1 = time.perf_counter()
        wall, fetch = t1 - t0, t1 - t_fetch
        calls = trace.get("llm_calls") or []
        return {
            "status": trace.get("status"),
            "wall_s": round(wall, 3),
            **split_of(trace, wall, fetch),
            "llm_calls": len(calls),
            "prompt_tokens": sum(int(c.get("prompt_tokens") or 0) for c in calls),
            "uncached_prompt_tokens": sum(
                int(c.get("prompt_tokens") or 0) - int(c.get("cached_prompt_tokens") or 0) for c in calls
            ),
            "completion_tokens": sum(int(c.get("completion_tokens") or 0) for c in calls),
            "threads": [(c.get("decoding") or {}).get("threads") for c in calls],
            "draft_accepted": sum(int((c.get("decoding") or {}).get("draft_accepted") or 0) for c in calls),
            "primitive_s": [
                round(float(c["t_end"]) - float(c["t_start"]), 3)
                for c in trace.get("primitive_calls") or []
                if c.get("name") == "put_first_on_second" and c.get("t_end")
            ],
            "put_args": next(
                (
                    json.dumps(c.get("args"))
                    for c in trace.get("primitive_calls") or []
                    if c.get("name") == "put_first_on_second"
                ),
                None,
            ),
            "run_id": trace.get("id"),
        }

    def close(self) -> None:
        self.http.close()


def headless_pick_place(objects: list[str], seed: int, code: str) -> float:
    """Seconds the pick-and-place takes on a bare simulator with the same scene, nothing rendered."""
    from capstan.primitives import PolicyAPI
    from capstan.sim import World

    with World({"objects": objects, "seed": seed}) as world:
        put = PolicyAPI(world).functions()["put_first_on_second"]
        args = json.loads(code)
        t0 = time.perf_counter()
        put(*args)
        return time.perf_counter() - t0


# --- phases ----------------------------------------------------------------------------------------


def command_phase(on: Client, off: Client, repeats: int, pause_s: float) -> dict[str, list[dict]]:
    """The command set `repeats` times; each time the simple commands then run again with media off,
    and again after a pause. Each pass is a pass of its own, not a run right after the same
    command's: the prompt only names the objects, so the model would find all of that one in its
    cache and answer faster."""
    rows: dict[str, list[dict]] = {
        "simple": [],
        "simple_media_off": [],
        "simple_after_pause": [],
        "compositional": [],
        "multi_turn": [],
    }
    seed = 100
    for r in range(repeats):
        passes = ((on, "simple", 0.0), (off, "simple_media_off", 0.0), (on, "simple_after_pause", pause_s))
        for client, key, pause in passes:
            for objects, text in SIMPLE:
                seed += 1
                sid = client.session(objects, seed)
                time.sleep(pause)
                row = client.timed(sid, "commands", {"text": text})
                rows[key].append({"command": text, "repeat": r, "seed": seed, **row})
                _progress(key, text, row)
        for objects, text in COMPOSITIONAL:
            seed += 1
            row = on.timed(on.session(objects, seed), "commands", {"text": text})
            rows["compositional"].append({"command": text, "repeat": r, "seed": seed, **row})
            _progress("compositional", text, row)
        seed += 1
        sid = on.session(MULTI_TURN[0], seed)
        for turn, text in enumerate(MULTI_TURN[1]):
            row = on.timed(sid, "commands", {"text": text})
            rows["multi_turn"].append({"command": text, "repeat": r, "turn": turn, "seed": seed, **row})
            _progress("multi_turn", text, row)
    return rows


def memory_phase(client: Client, programs: int) -> tuple[dict, dict]:
    sessions = [client.session(PROGRAM_OBJECTS, 500 + i) for i in range(MEMORY_SESSIONS)]
    for sid in sessions:
        client.timed(sid, "programs", {"code": "say('ready')"})
    sessions_8 = pss_mb()
    per_client = [
        programs // MEMORY_SESSIONS + (i < programs % MEMORY_SESSIONS) for i in range(MEMORY_SESSIONS)
    ]
    failures: list[str] = []
    walls: list[float] = []
    lock = threading.Lock()

    def drive(sid: str, n: int) -> None:
        local = Client(client.url)
        try:
            for k in range(n):
                bowl = ("blue bowl", "yellow bowl")[k % 2]
                row = local.timed(sid, "programs", {"code": f"put_first_on_second('red block', '{bowl}')"})
                with lock:
                    walls.append(row["wall_s"])
                    if row["status"] != "succeeded":
                        failures.append(f"{sid}: {row['status']}")
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"{sid}: {exc}")
        finally:
            local.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(s, n)) for s, n in zip(sessions, per_client, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    after = pss_mb()
    for sid in sessions:
        client.http.delete(f"/v1/sessions/{sid}").raise_for_status()
    throughput = {
        "programs": len(walls),
        "failed": failures[:10],
        "programs_per_s": round(len(walls) / elapsed, 3) if elapsed else None,
        "program_p50_s": _pct(walls, 0.5),
    }
    return {"sessions_8": sessions_8, "after_programs": after}, throughput


LOAD_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "cyan")
LOAD_RUNS = 5
LOAD_DEADLINE_S = 600.0


def load_phase(client: Client) -> dict:
    """8 sessions x 5 one-line pick-and-place programs, all submitted at once without waiting; a
    client refused with 429 waits its Retry-After and submits again. Every run must succeed in its
    own session with its own program, touching only its session's objects."""
    from capstan.service.store import UNFINISHED

    plan = []
    for i, color in enumerate(LOAD_COLORS):
        block = f"{color} block"
        bowls = (f"{LOAD_COLORS[(i + 1) % 8]} bowl", f"{LOAD_COLORS[(i + 2) % 8]} bowl")
        plan.append((client.session([block, *bowls], 700 + i), block, bowls))
    submitted: list[dict] = []
    refused = [0]
    lock = threading.Lock()

    def submit(sid: str, block: str, bowls: tuple[str, str]) -> None:
        local = Client(client.url)
        try:
            for k in range(LOAD_RUNS):
                code = f"put_first_on_second('{block}', '{bowls[k % 2]}')"
                while True:
                    r = local.http.post(f"/v1/sessions/{sid}/programs", json={"code": code})
                    if r.status_code != 429:
                        break
                    with lock:
                        refused[0] += 1
                    time.sleep(float(r.headers.get("Retry-After", 1)))  # the service always sends it
                r.raise_for_status()
                with lock:
                    submitted.append(
                        {"run": r.json()["run_id"], "session": sid, "code": code, "own": {block, *bowls}}
                    )
        finally:
            local.close()

    t0 = time.time()
    threads = [threading.Thread(target=submit, args=item) for item in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    traces = {}
    deadline = time.monotonic() + LOAD_DEADLINE_S
    for item in submitted:
        while (trace := client.http.get(f"/v1/runs/{item['run']}").json())["status"] in UNFINISHED:
            if time.monotonic() > deadline:
                break  # not finished in time: counted as lost
            time.sleep(0.2)
        else:
            traces[item["run"]] = trace
    ended = max((float(t["timings"]["ended_at"]) for t in traces.values()), default=t0)
    mixed = [
        i["run"]
        for i in submitted
        if i["run"] in traces
        and (
            traces[i["run"]]["session_id"] != i["session"]
            or traces[i["run"]]["code"] != i["code"]
            or mentioned_objects(traces[i["run"]]) - i["own"]
        )
    ]
    for sid, _, _ in plan:
        client.http.delete(f"/v1/sessions/{sid}").raise_for_status()
    return {
        "runs": len(plan) * LOAD_RUNS,
        "finished": len(traces),
        "succeeded": sum(1 for t in traces.values() if t["status"] == "succeeded"),
        "lost": len(plan) * LOAD_RUNS - len(traces),
        "mixed": mixed,
        "refused_429": refused[0],
        "runs_per_s": round(len(traces) / (ended - t0), 3) if ended > t0 else None,
        "wall_s": round(ended - t0, 2),
    }


def _progress(kind: str, text: str, row: dict) -> None:
    print(f"  {kind:<17} {row['wall_s']:6.2f}s  {row['status']:<10} {text}", file=sys.stderr, flush=True)


def summarize(rows: dict[str, list[dict]]) -> dict:
    out: dict[str, Any] = {}
    for kind, items in rows.items():
        walls = [r["wall_s"] for r in items]
        out[f"{kind}_p50_s"] = _pct(walls, 0.5)
        out[f"{kind}_p90_s"] = _pct(walls, 0.9)
        out[f"{kind}_spread_s"] = [min(walls), max(walls)] if walls else None
        out[f"{kind}_succeeded"] = sum(1 for r in items if r["status"] == "succeeded")
        out[f"{kind}_n"] = len(items)
        out[f"{kind}_split_p50_s"] = {
            part: _pct([r[part] for r in items], 0.5)
            for part in ("llm_s", "sandbox_s", "motion_s", "media_s", "http_s")
        }
    simple = rows["simple"]
    out["uncached_prompt_tokens_simple"] = _pct([r["uncached_prompt_tokens"] for r in simple], 0.5)
    paused = [r["uncached_prompt_tokens"] for r in rows.get("simple_after_pause", [])]
    out["uncached_prompt_tokens_simple_after_pause"] = _pct(paused, 0.5)
    out["prompt_tokens_simple"] = _pct([r["prompt_tokens"] for r in simple], 0.5)
    out["llm_calls_simple"] = _pct([r["llm_calls"] for r in simple], 0.5)
    return out


def run(args: argparse.Namespace) -> int:
    from capstan.bench.robot_rig import ServiceServer
    from capstan.llm import from_config

    started_at = time.time()
    llm = from_config()
    with contextlib.ExitStack() as stack:
        on_server = stack.enter_context(ServiceServer(llm=llm, media=True, max_sessions=64))
        on = stack.enter_context(contextlib.closing(Client(on_server.url)))
        memory_started = pss_mb()  # one service (the media-off one starts after the memory phase)
        memory, throughput = ({}, {}) if args.no_memory else memory_phase(on, args.programs)
        load = load_phase(on)
        # The two services share one model, which a deployment never does: the media-off one reads
        # nothing ahead, or its reading holds the model when the other reads a new session's scene
        # (its own commands are posted at once, before a reading would start).
        off_server = stack.enter_context(ServiceServer(llm=llm, media=False, max_sessions=64, prefill=False))
        off = stack.enter_context(contextlib.closing(Client(off_server.url)))
        objects, text = SIMPLE[0]
        warm = on.timed(on.session(objects, 99), "commands", {"text": text})
        _progress("warm-up", text, warm)
        rows = command_phase(on, off, max(1, args.repeats), args.pause)
    headless = []
    for row in rows["simple"]:
        trace_args = row.get("put_args")
        if trace_args is not None:
            objects = next(o for o, t in SIMPLE if t == row["command"])
            headless.append(headless_pick_place(objects, row["seed"], trace_args))
    served = [s for r in rows["simple"] for s in r["primitive_s"]]
    figures: dict[str, Any] = {
        "model": getattr(llm, "model", None),
        "provider": getattr(llm, "name", None),
        "pause_s": args.pause,
        "warmup_s": warm["wall_s"],
        **summarize(rows),
        "pick_place_served_p50_s": _pct(served, 0.5),
        "pick_place_headless_p50_s": _pct(headless, 0.5),
        "pick_place_ratio_vs_headless": (
            round(statistics.median(served) / statistics.median(headless), 2) if served and headless else None
        ),
        "memory_mb": None if args.no_memory else {"started": memory_started, **_memory_keys(memory, args)},
        "throughput": throughput or None,
        "load": load,
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)},
        "started_at": started_at,
        "items": rows,
    }
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "e2e.json").write_text(json.dumps(figures, indent=2) + "\n")
    shown = {k: v for k, v in figures.items() if k != "items"}
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for key, value in shown.items():
            print(f"{key:<36} {value}")
    return 0


def _memory_keys(memory: dict, args: argparse.Namespace) -> dict:
    out = {"sessions_8": memory["sessions_8"], f"after_{args.programs}_programs": memory["after_programs"]}
    out["growth_ratio"] = (
        round(memory["after_programs"] / memory["sessions_8"], 3) if memory["sessions_8"] else None
    )
    return out
