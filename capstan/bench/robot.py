"""`capstan bench robot`: the real-robot path end to end on franky-sim, with no model in it.

The chain is the one a lab runs: this process serves Capstan (uvicorn on loopback) with
CAPSTAN_ROBOTS pointing, through a loopback TCP proxy, at a Franka robot agent in its own process
(`capstan robot-agent --backend franka --franka-host H`), which drives franky, which speaks the
Franka network protocol to franky-sim (MuJoCo, another process, with three real 4 cm blocks).

- pick and place: `--scenes` seeded scenes (2 or 3 blocks at random reachable, separated places,
  the others parked off the table, and a free target); each is declared to the session, then the
  hand-written program `put_first_on_second('<color> block', [x, y])` runs through
  `POST /v1/sessions/{id}/programs?wait=true` (twin rehearsal included). Success is read from
  franky-sim's true block position: within 2 cm of the target in x and y, resting on the table.
  `pick_place_median_s` is the wall time of one such request; `dry_run_ms_*` the twin rehearsal's
  own time (the trace's candidate `seconds`);
- e-stop: `--estop-trials` motions of a long move program, each cancelled mid-motion with
  `POST /v1/runs/{id}/cancel`; the latency runs from sending that request until the arm is still;
- watchdog: `--watchdog-trials` motions during which the proxy cuts the service's line to the
  agent (every connection closed, new ones refused); from the cut until the arm is still;
- the floor: as many motions stopped by the bench itself calling the agent's `/v1/robot/stop`
  on its own loopback line, with no service in the way: what any e-stop costs on this arm.
  `estop_over_floor_ms` is the service's share (e-stop p50 minus floor p50), and
  `watchdog_over_limit_ms` the watchdog's p50 minus its limit.
The three kinds of stop trial are interleaved (one of each in turn), so a noisy minute hits all.
A trial whose run ended by itself before the stop (the arm's own reflex, as a simulator starved of
CPU can cause) has nothing to time: it is tried once more, and its row says why (`retried_after`).

"Still" is the arm's fastest joint below `--still-rad-s` (default 0.15 rad/s) in the median of three
consecutive samples of franky-sim's joint velocities (~2-3 ms apart; the median ignores one odd
sample). A resting arm reads ~1e-4 rad/s (`rest_speed_rad_s`, sampled the same way for 2 s at the
start), but one that franky has just stopped keeps reading ~0.08 rad/s while its joint angles no
longer change (measured here: < 5e-4 rad/s from the angles themselves); an arm in motion turns at
~0.8-1 rad/s (`speed_at_trigger_rad_s`). 0.15 lies between the stopped arm and the moving one.

The agent's watchdog limit is `--heartbeat-ms` (default 250, the agent's own default); a spurious
trip shows up as a failed scene with its reason. The service shares this process with the sampling
loop, as a lab's service shares its own with the twin rehearsal. The proxy runs in a process of its
own, as a lab's network does: a long C call here (PyBullet's first twin world holds the GIL for
~0.3 s) then delays no heartbeat, which come from the service's heartbeat process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the blocks franky-sim holds; a scene puts 2 or 3 of them on the table and parks the rest
BLOCKS = {
    "red block": {"color": "red", "position": [-0.1, 0.45]},
    "blue block": {"color": "blue", "position": [0.0, 0.45]},
    "green block": {"color": "green", "position": [0.1, 0.45]},
}
PARKED = [[0.45, 0.40], [0.45, 0.55], [0.45, 0.70]]  # off the table's right edge, out of every path
# where scenes put blocks and targets: inside the workspace with a margin the arm reaches easily
SCENE_X, SCENE_Y = (-0.18, 0.18), (0.36, 0.64)
SPACING_M = 0.10  # between any two of a scene's blocks and its target: room for the open fingers
HOME = [0.0, 0.45, 0.30]  # the arm waits here, above the table and clear of every block
TARGET_TOLERANCE_M = 0.02
ON_TABLE_Z = (0.010, 0.030)  # a resting 4 cm block's centre height
MOVING_RAD_S = 0.3  # the arm is clearly in motion
STILL_SAMPLES = 3
# between joint-speed samples: a few ms of resolution, without a query stream that would compete
# with franky-sim's own 1 kHz stepping thread for its process's interpreter
POLL_S = 0.002
SETTLE_S = 1.0  # franky-sim's arm rings down for a few tenths of a second after a motion ends
# a long program: back and forth across the table, far more motion than any trial lets it finish
LONG_MOVES = """
for i in range(6):
    move_gripper_to([-0.18, 0.42, 0.25])
    move_gripper_to([0.18, 0.62, 0.25])
"""
RUN_WAIT_S = 120.0


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--scenes", type=int, default=20, help="pick-and-place scenes (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes (default 0)")
    parser.add_argument(
        "--estop-trials",
        type=int,
        default=5,
        help="motions cancelled mid-way, and as many stopped directly at the agent (default 5)",
    )
    parser.add_argument(
        "--watchdog-trials", type=int, default=5, help="motions cut off from the service (default 5)"
    )
    parser.add_argument(
        "--heartbeat-ms", type=int, default=250, help="the agent's --heartbeat-ms (default 250)"
    )
    parser.add_argument(
        "--still-rad-s",
        type=float,
        default=0.15,
        help="the arm is still below this joint speed (default 0.15 rad/s)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="also write DIR/robot.json and DIR/robot.md"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.scenes < 0 or args.estop_trials < 0 or args.watchdog_trials < 0:
        raise SystemExit("--scenes, --estop-trials and --watchdog-trials take numbers >= 0")
    t_start = time.perf_counter()
    trials = max(args.estop_trials, args.watchdog_trials)
    total = args.scenes + args.estop_trials * 2 + args.watchdog_trials
    with (
        _Bench(args) as bench,
        tqdm(total=total, desc="bench robot", file=sys.stderr, disable=args.no_progress or None) as bar,
    ):
        rest = bench.rest_speeds()
        scenes = []
        for i in range(args.scenes):
            scenes.append(bench.pick_place(random.Random(args.seed * 1_000_003 + i), i))
            bar.update()
        estops, floor, watchdog = [], [], []
        for i in range(trials):
            if i < args.estop_trials:
                estops.append(bench.timed_stop(bench.cancel, args.seed * 1000 + i))
                floor.append(bench.timed_stop(bench.direct_stop, args.seed * 1000 + 250 + i))
                bar.update(2)
            if i < args.watchdog_trials:
                watchdog.append(bench.timed_stop(bench.cut, args.seed * 1000 + 500 + i))
                bar.update()
    result = _summary(args, rest, scenes, estops, floor, watchdog, time.perf_counter() - t_start)
    if args.out is not None:
        from capstan.bench.report import write_report

        write_report(args.out, "robot", result, markdown(result))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(result), end="")
    return 0


class _Bench:
    """franky-sim, the agent, the proxy and the service, started in that order, and one session."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.still = float(args.still_rad_s)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Bench:
        import httpx

        from capstan.bench.robot_rig import AgentProcess, ServiceServer
        from capstan.bench.tcp_proxy import ProxyProcess
        from capstan.franka import FrankySim
        from capstan.primitives.remote import RemoteRobot

        with self._stack:
            self.sim = self._stack.enter_context(FrankySim(BLOCKS))
            heartbeat = ["--heartbeat-ms", str(self.args.heartbeat_ms)]
            self.agent = self._stack.enter_context(AgentProcess(self.sim.hostname, heartbeat))
            self.line = self._stack.enter_context(ProxyProcess(self.agent.port))
            self.server = self._stack.enter_context(ServiceServer(robots=f"franka={self.line.url}"))
            self.http = self._stack.enter_context(httpx.Client(base_url=self.server.url, timeout=RUN_WAIT_S))
            # the bench's own line to the agent, beside the service's (and never cut): it sets scenes up
            self.robot = RemoteRobot(self.agent.url, name="franka (bench)")
            self._stack.callback(self.robot.close)
            self.session = self._new_session()
            self._stack = self._stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _new_session(self) -> str:
        r = self.http.post("/v1/sessions", json={"robot": "franka"})
        if r.status_code != 201:
            raise RuntimeError(f"the service refused a franka session: {r.status_code} {r.text[:300]}")
        return r.json()["id"]

    # -- the arm, as franky-sim sees it -----------------------------------------------------------
    def rest_speeds(self, seconds: float = 2.0) -> list[float]:
        """The resting arm's fastest joint speed, sampled for `seconds` (franky holding it)."""
        self.home()
        self.wait_still(10.0)
        time.sleep(SETTLE_S)
        samples, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            samples.append(self.sim.joint_speed())
            time.sleep(POLL_S)
        return samples

    def wait_still(self, timeout: float) -> float | None:
        """When the arm became still (perf_counter time of the first of STILL_SAMPLES samples whose
        median is below the threshold), or None when it did not within `timeout`."""
        window: list[tuple[float, float]] = []
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            window.append((time.perf_counter(), self.sim.joint_speed()))
            window = window[-STILL_SAMPLES:]
            if len(window) == STILL_SAMPLES and statistics.median(s for _, s in window) < self.still:
                return window[0][0]
            time.sleep(POLL_S)
        return None

    def wait_moving(self, timeout: float) -> bool:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if self.sim.joint_speed() > MOVING_RAD_S:
                return True
            time.sleep(POLL_S)
        return False

    def home(self) -> None:
        """The arm to HOME, through the agent directly (setting up a scene is not what is measured)."""
        self.robot.move_ee(HOME, speed=0.5)

    # -- scenes ---------------------------------------------------------------------------------
    def declare(self, objects: dict[str, dict]) -> None:
        """Declare the scene to the session, as an operator does (the service forwards it to the agent)."""
        r = self.http.put(f"/v1/sessions/{self.session}/objects", json={"objects": objects})
        if r.status_code != 200:
            raise RuntimeError(f"the service refused the scene: {r.status_code} {r.text[:300]}")

    def pick_place(self, rng: random.Random, index: int) -> dict:
        names, spots, target = _scene(rng)
        block = names[0]
        row: dict[str, Any] = {"scene": index, "block": block, "target": _r(target), "blocks": {}}
        try:
            self.home()
            parked = [n for n in BLOCKS if n not in names]
            self.sim.place_blocks(
                {
                    **dict(zip(names, spots, strict=True)),
                    **dict(zip(parked, PARKED[: len(parked)], strict=True)),
                }
            )
            time.sleep(0.3)  # let them settle
            truth = self.sim.block_positions()
            row["blocks"] = {n: _r(truth[n][:2]) for n in names}
            self.declare({n: {"position": [float(v) for v in truth[n][:2]]} for n in names})
            code = f"put_first_on_second({block!r}, [{target[0]:.4f}, {target[1]:.4f}])"
            t0 = time.perf_counter()
            r = self.http.post(
                f"/v1/sessions/{self.session}/programs", params={"wait": "true"}, json={"code": code}
            )
            row["seconds"] = round(time.perf_counter() - t0, 3)
            trace = r.json()
            row["status"] = trace.get("status")
            row["dry_run_s"] = [c["seconds"] for c in _candidates(trace) if c.get("twin")]
            final = self.sim.block_positions()[block]
            row["final"] = _r(final)
            problems = [_placement_problem(final, target)]
            if row["status"] != "succeeded":
                problems.insert(0, f"run {row['status']}: {_error(trace)}")
            row["why"] = "; ".join(p for p in problems if p) or None
        except Exception as exc:  # noqa: BLE001 - one broken scene is a failure, not the end of the bench
            row["why"] = f"{type(exc).__name__}: {exc}"[:300]
        row["success"] = row["why"] is None
        if not row["success"]:
            self._tidy()
        return row

    def _tidy(self) -> None:
        """After a failure, as an operator would: the arm resumed (a watchdog stop too), out of any
        reflex, its hand open (each step may be moot)."""
        for step in (self.robot.clear_watchdog, self.robot.recover, lambda: self.robot.set_gripper(False)):
            with contextlib.suppress(Exception):
                step()

    # -- stopping -------------------------------------------------------------------------------
    def cancel(self, run_id: str) -> None:
        self.http.post(f"/v1/runs/{run_id}/cancel")

    def cut(self, run_id: str) -> None:
        self.line.cut()

    def direct_stop(self, run_id: str) -> None:
        self.robot.stop()

    def timed_stop(self, trigger: Callable[[str], None], seed: int) -> dict:
        """A stop trial, once more when its run ended by itself before the stop (said in the row)."""
        row = self.stop_trial(trigger, random.Random(seed))
        if "ended_early" not in row:
            return row
        again = self.stop_trial(trigger, random.Random(seed + 1_000_000))
        return {**again, "retried_after": row["ended_early"]}

    def stop_trial(self, trigger: Callable[[str], None], rng: random.Random) -> dict:
        """Start LONG_MOVES, trigger a stop mid-motion; ms from the trigger until the arm is still."""
        row: dict[str, Any] = {}
        try:
            self.home()
            self.wait_still(5.0)
            r = self.http.post(f"/v1/sessions/{self.session}/programs", json={"code": LONG_MOVES})
            run_id = r.json()["run_id"]
            if not self.wait_moving(60.0):
                raise RuntimeError(f"the arm never moved: {self._status(run_id)}")
            time.sleep(rng.uniform(0.15, 0.5))  # somewhere in the motion, not at its start
            status = self._status(run_id)
            if status != "running":  # it stopped by itself (a starved simulator's reflex): nothing to time
                why = f"the run was {status} before the stop: {self._error(run_id)}"
                return {"ended_early": why, "run": status}
            speed = self.sim.joint_speed()
            t0 = time.perf_counter()
            trigger(run_id)
            still = self.wait_still(10.0)
            row = {"speed_at_trigger_rad_s": round(speed, 3)}
            row["ms"] = round((still - t0) * 1000, 1) if still is not None else None
            row["run"] = self._settle(run_id)
            if row["run"] == "failed":  # expected of a cut line; from a cancel or a direct stop, say why
                row["run_error"] = self._error(run_id)
        except Exception as exc:  # noqa: BLE001 - reported with the trial
            row["why"] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if not self.line.listening:
                self.line.restore()
            with contextlib.suppress(Exception):
                self.robot.clear_watchdog()  # the operator's resume: the cut trials trip the watchdog
            with contextlib.suppress(Exception):
                self.robot.resume()  # the direct stops are nobody's to lift but ours
        return row

    def _status(self, run_id: str) -> str:
        with contextlib.suppress(Exception):
            return str(self.http.get(f"/v1/runs/{run_id}").json().get("status"))
        return "unknown"

    def _error(self, run_id: str) -> str:
        return _error(self.http.get(f"/v1/runs/{run_id}").json())

    def _settle(self, run_id: str) -> str:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            status = self._status(run_id)
            if status in ("succeeded", "failed", "cancelled"):
                return status
            time.sleep(0.1)
        return self._status(run_id)


def _rolling_medians(samples: list[float]) -> list[float]:
    n = STILL_SAMPLES
    return [statistics.median(samples[i : i + n]) for i in range(len(samples) - n + 1)]


def _scene(rng: random.Random) -> tuple[list[str], list[list[float]], list[float]]:
    """2 or 3 block names (the first is moved), their places and a free target, all SPACING_M apart."""
    names = rng.sample(list(BLOCKS), rng.choice([2, 3]))
    for _ in range(1000):
        points = [[rng.uniform(*SCENE_X), rng.uniform(*SCENE_Y)] for _ in range(len(names) + 1)]
        if all(math.dist(a, b) >= SPACING_M for i, a in enumerate(points) for b in points[i + 1 :]):
            return names, points[:-1], points[-1]
    raise RuntimeError("no scene found with every block and the target apart")


def _placement_problem(final, target) -> str | None:
    off = math.dist(final[:2], target)
    if off > TARGET_TOLERANCE_M:
        return f"block {off * 100:.1f} cm from the target"
    if not ON_TABLE_Z[0] <= final[2] <= ON_TABLE_Z[1]:
        return f"block not resting on the table (centre at z={final[2]:.3f} m)"
    return None


def _candidates(trace: dict) -> list[dict]:
    return [c for a in trace.get("attempts") or [] for c in a.get("candidates") or []]


def _error(trace: dict) -> str:
    error = trace.get("error") or {}
    return str(error.get("message", "no error recorded"))[:200]


def _r(xyz) -> list[float]:
    return [round(float(v), 4) for v in xyz]


def _percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))], 1)


def _latencies(rows: list[dict], name: str) -> dict:
    ms = [r["ms"] for r in rows if r.get("ms") is not None]
    return {
        f"{name}_ms_p50": round(statistics.median(ms), 1) if ms else None,
        f"{name}_ms_p90": _percentile(ms, 0.9),
        f"{name}_n": len(ms),
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)  # noqa: S603, S607
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("franky-control", "franky-sim", "mujoco"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _summary(
    args,
    rest: list[float],
    scenes: list[dict],
    estops: list[dict],
    floor: list[dict],
    watchdog: list[dict],
    wall: float,
) -> dict:
    from capstan.bench.stats import wilson_interval

    ok = sum(r["success"] for r in scenes)
    seconds = [r["seconds"] for r in scenes if "seconds" in r]
    dry = [s * 1000 for r in scenes for s in r.get("dry_run_s", [])]
    latency = {
        **_latencies(estops, "estop_latency"),
        **_latencies(floor, "estop_floor"),
        **_latencies(watchdog, "watchdog_stop"),
    }
    return {
        "suite": "robot",
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "command": "capstan bench robot " + " ".join(sys.argv[sys.argv.index("robot") + 1 :])
        if "robot" in sys.argv
        else None,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            **_versions(),
        },
        "seed": args.seed,
        "heartbeat_ms": args.heartbeat_ms,
        "still_rad_s": args.still_rad_s,
        "rest_speed_rad_s": {
            "p50": round(statistics.median(rest), 5) if rest else None,
            "max": round(max(rest), 5) if rest else None,
            # what "still" compares with the threshold: the median of STILL_SAMPLES in a row
            "max_median3": round(max(_rolling_medians(rest)), 5) if len(rest) >= STILL_SAMPLES else None,
            "n": len(rest),
        },
        "pick_place_success_rate": ok / len(scenes) if scenes else None,
        "pick_place_ci95": list(wilson_interval(ok, len(scenes))),
        "pick_place_n": len(scenes),
        "pick_place_median_s": round(statistics.median(seconds), 3) if seconds else None,
        **latency,
        "estop_over_floor_ms": _difference(latency["estop_latency_ms_p50"], latency["estop_floor_ms_p50"]),
        "watchdog_over_limit_ms": _difference(latency["watchdog_stop_ms_p50"], args.heartbeat_ms),
        "dry_run_ms_p50": round(statistics.median(dry), 1) if dry else None,
        "dry_run_ms_p90": _percentile(dry, 0.9),
        "failures": [{"scene": r["scene"], "why": r["why"]} for r in scenes if not r["success"]],
        "scenes": scenes,
        "estop_trials": estops,
        "estop_floor_trials": floor,
        "watchdog_trials": watchdog,
        "wall_s": round(wall, 1),
    }


def markdown(result: dict) -> str:
    from capstan.bench.report import markdown_table, pct

    lo, hi = result["pick_place_ci95"]
    rate = result["pick_place_success_rate"]
    rest = result["rest_speed_rad_s"]

    def ms(name: str) -> str:
        return f"{result[name + '_p50']} / {result[name + '_p90']} ms"

    success = f"{pct(rate or 0.0)} of {result['pick_place_n']} (Wilson 95% {pct(lo)}-{pct(hi)})"
    rows = [
        ["pick-and-place success", success],
        ["pick-and-place, one program request (median)", f"{result['pick_place_median_s']} s"],
        ["twin rehearsal p50 / p90", ms("dry_run_ms")],
        [f"e-stop: cancel to still, p50 / p90 (n={result['estop_latency_n']})", ms("estop_latency_ms")],
        [
            f"floor: the agent's stop called directly, to still, p50 / p90 (n={result['estop_floor_n']})",
            ms("estop_floor_ms"),
        ],
        ["e-stop over the floor (p50)", f"{result['estop_over_floor_ms']} ms"],
        [f"watchdog: line cut to still, p50 / p90 (n={result['watchdog_stop_n']})", ms("watchdog_stop_ms")],
        ["watchdog over its limit (p50)", f"{result['watchdog_over_limit_ms']} ms"],
        ["agent heartbeat", f"{result['heartbeat_ms']} ms"],
        [
            "still: below / resting arm p50, max of median-of-3",
            f"{result['still_rad_s']} / {rest['p50']}, {rest['max_median3']} rad/s",
        ],
    ]
    text = f"# capstan bench robot on {result['commit']}\n\n" + markdown_table(["figure", "value"], rows)
    m = result["machine"]
    text += (
        f"\n{m['cpus']} CPUs, load {m['load_avg_1m']}, {m['platform']}, Python {m['python']}, franky-control "
        f"{m['franky-control']}, franky-sim {m['franky-sim']}; {result['wall_s']} s in all.\n"
    )
    if result["failures"]:
        text += "\nFailed scenes:\n\n" + markdown_table(
            ["scene", "why"], [[f["scene"], f["why"]] for f in result["failures"]]
        )
    return text
