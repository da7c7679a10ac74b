"""`capstan bench sandbox`: what the sandbox costs, side by side in one run.

- warm start: `Sandbox.run("ret_val = 1")` with a warm pool (target <= 5 ms median);
- host-function round trip: intervals between consecutive calls of a no-op host function
  from a tight loop in the program (target <= 100 us median);
- the same benign policy (numpy + shapely math and a few hundred host calls, >= 50 ms) under
  plain `exec()`, smolagents' `LocalPythonExecutor` and our sandbox
  (`overhead_vs_exec` = ours / exec, target <= 1.5; `ratio_vs_smolagents` = smolagents / ours).
  "Ours" is the sandbox as the service runs a policy on the simulator: `get_obj_pos` is a pure
  read (`Sandbox.run(pure=...)`), so a repeated read is answered in the worker and reported to
  the host afterwards. The same figures with every host call a blocking round trip (as on a
  remote robot, whose scene moves by itself) are `*_round_trips`;
  The loop count is calibrated so that the policy runs ~100 ms under exec() on this machine
  (the issue asks for >= 50 ms; the margin is for this machine's speed drifting by up to 3x
  between calibration and timing), keeping one host call per loop iteration;
- the floor that the operating system sets for a program in another process: the same policy
  under plain exec(), but with each host call a blocking round trip over a bare socketpair to a
  minimal echo process (no sandbox, no codec, no validation, default scheduling):
  `overhead_floor_vs_exec`.
  `overhead_vs_floor` = ours with round trips / floor is what our sandbox adds on top of that hop;
- the same policy with a round-trip host call only every k-th iteration (`--every`, default 4 and 16):
  `overhead_by_call_rate` shows how the overhead falls with the host-call rate, i.e. how fast
  a reactive loop can call the robot before the sandbox costs more than 1.5x.

Ratios are medians over rounds of (time ÷ exec time in the same round), because this kind of
machine drifts in speed by up to 2x from minute to minute. Every timed run starts with no
worker booting in the background (a boot takes a CPU for a few hundred ms), so exec(), the
floor and the sandbox see the same quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time

POLICY = """
import numpy as np
from shapely.geometry import Point, Polygon
from shapely import affinity

names = ["red block", "blue bowl", "green block"]
square = Polygon([(0, 0), (0.2, 0), (0.2, 0.2), (0, 0.2)])
total = 0.0
for i in range(STEPS):
    if i % EVERY == 0:
        p = get_obj_pos(names[i // EVERY % 3])
    zone = Point(float(p[0]), float(p[1])).buffer(0.15, 16)
    turned = affinity.rotate(square, i, origin="centroid")
    total += zone.intersection(turned).area
    ring = np.stack([np.cos(np.linspace(0, 6.28, 64)), np.sin(np.linspace(0, 6.28, 64))], axis=1)
    total += float(np.linalg.norm(ring * p[:2], axis=1).max())
ret_val = total
"""


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="loop iterations (= host calls) of the policy; default: enough for ~100 ms under exec()",
    )
    parser.add_argument(
        "--repeats", type=int, default=15, help="timed runs per executor (interleaved rounds)"
    )
    parser.add_argument(
        "--every",
        default="4,16",
        help="comma-separated k: also time the policy with a host call every k-th iteration ('' for none)",
    )
    parser.add_argument("--starts", type=int, default=25, help="warm-start samples")
    parser.add_argument(
        "--isolation",
        default="auto",
        metavar="LIST",
        help="comma-separated OS boundaries to measure under: auto (the strongest that works here, the "
        "default), bwrap, landlock; with several, their runs alternate",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        metavar="N",
        help="whole measurements per boundary; with N > 1 the figures are the medians of the N runs, "
        "each run's figures and the spread are kept",
    )


def _host():
    import numpy as np

    positions = {
        "red block": np.array([0.1, 0.5]),
        "blue bowl": np.array([-0.2, 0.6]),
        "green block": np.array([0.0, 0.4]),
    }

    def get_obj_pos(name):
        return positions[name].copy()

    return get_obj_pos


# The echo process of the floor measurement: answers a name with 16 bytes (two float64),
# one SOCK_SEQPACKET datagram per message, so neither side parses anything.
_ECHO = """
import socket, struct, sys
positions = {b"red block": (0.1, 0.5), b"blue bowl": (-0.2, 0.6), b"green block": (0.0, 0.4)}
replies = {name: struct.pack("<2d", *xy) for name, xy in positions.items()}
sock = socket.socket(fileno=int(sys.argv[1]))
while True:
    name = sock.recv(256)
    if not name:
        break
    sock.send(replies[name])
"""


class _BareProcess:
    """A minimal second process that serves get_obj_pos over a socketpair: the floor."""

    def __init__(self):
        import numpy as np

        self._np = np
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter running our own echo loop
            [sys.executable, "-I", "-S", "-c", _ECHO, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
        )
        theirs.close()
        self.sock = ours

    def get_obj_pos(self, name):
        self.sock.send(name.encode())
        return self._np.frombuffer(self.sock.recv(64), dtype=self._np.float64).copy()

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(5)


class _Executors:
    """The ways to run the benign policy; each `*_once` returns (wall s, CPU s, ret_val)."""

    def __init__(self, sb, code: str, bare: bool = True):
        self.sb = sb
        self.code = code
        self.get_obj_pos = _host()
        try:
            from smolagents.local_python_executor import LocalPythonExecutor
        except ImportError:  # pragma: no cover - smolagents is in the bench extra
            LocalPythonExecutor = None
        self.smol_cls = LocalPythonExecutor
        self.bare = _BareProcess() if bare else None

    def close(self) -> None:
        if self.bare is not None:
            self.bare.close()

    def quiesce(self) -> None:
        """Wait until no worker is booting, so no run shares the CPUs with a boot."""
        self.sb.wait_ready()

    def exec_once(self):
        return self._exec(self.get_obj_pos)

    def floor_once(self):
        """exec(), with every host call a round trip to another process (see _BareProcess)."""
        return self._exec(self.bare.get_obj_pos)

    def _exec(self, get_obj_pos):
        ns = {"get_obj_pos": get_obj_pos}
        wall, cpu = time.perf_counter(), time.thread_time()
        exec(self.code, ns)  # noqa: S102 - the baseline being measured
        return time.perf_counter() - wall, time.thread_time() - cpu, ns["ret_val"]

    def smolagents_once(self):
        wall, cpu = time.perf_counter(), time.thread_time()
        executor = self.smol_cls(
            additional_authorized_imports=["numpy", "numpy.*", "shapely", "shapely.*"],
            additional_functions={"get_obj_pos": self.get_obj_pos},
        )
        executor.send_tools({})
        executor(self.code)
        return time.perf_counter() - wall, time.thread_time() - cpu, executor.state.get("ret_val")

    def sandbox_once(self):
        """Reads pure, as the service runs a policy on the simulator."""
        return self._sandbox(pure=("get_obj_pos",))

    def round_trips_once(self):
        """Every host call a round trip, as on a remote robot."""
        return self._sandbox(pure=())

    def _sandbox(self, pure):
        """CPU = this thread's CPU (serving calls) + the CPU the worker reports for the program."""
        wall, cpu = time.perf_counter(), time.thread_time()
        res = self.sb.run(self.code, {"get_obj_pos": self.get_obj_pos}, timeout_s=60, pure=pure)
        cpu = time.thread_time() - cpu + (res.cpu_s or 0.0)
        wall = time.perf_counter() - wall
        if not res.ok:
            raise RuntimeError(f"benign policy failed in the sandbox: {res.error}")
        return wall, cpu, res.values["ret_val"]


def _interleaved(ex: _Executors, repeats: int) -> dict[str, list[tuple]]:
    """Round-robin the executors so that each sees the same machine load."""
    samples: dict[str, list[tuple]] = {
        "exec": [],
        "floor": [],
        "smolagents": [],
        "sandbox": [],
        "round_trips": [],
    }
    ex.exec_once()  # warm caches and lazy imports before timing
    ex.floor_once()
    executors = (
        ("exec", ex.exec_once),
        ("floor", ex.floor_once),
        ("sandbox", ex.sandbox_once),
        ("round_trips", ex.round_trips_once),
    )
    for i in range(repeats):
        for name, once in executors:
            ex.quiesce()
            samples[name].append(once())
        if ex.smol_cls is not None and i % 2 == 0:
            ex.quiesce()
            samples["smolagents"].append(ex.smolagents_once())
    return samples


def _warm_start(sb, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        sb.wait_ready()
        start = time.perf_counter()
        res = sb.run("ret_val = 1", timeout_s=10)
        samples.append(time.perf_counter() - start)
        if not res.ok:
            raise RuntimeError(f"the warm-start probe failed: {res.error}")
    return samples


def _round_trips(sb, calls: int = 3000) -> list[float]:
    stamps: list[float] = []

    def noop(i):
        stamps.append(time.perf_counter())
        return i

    sb.wait_ready()
    res = sb.run(f"for i in range({calls}):\n    noop(i)", {"noop": noop}, timeout_s=60)
    if not res.ok:
        raise RuntimeError(f"the round-trip probe failed: {res.error}")
    return [b - a for a, b in itertools.pairwise(stamps)]


def _policy(steps: int, every: int = 1) -> str:
    return POLICY.replace("STEPS", str(steps)).replace("EVERY", str(every))


def _call_rate_sweep(sb, steps: int, everies: list[int], repeats: int) -> list[dict]:
    """The policy's overhead when only every k-th iteration calls the host."""
    rows = []
    for every in everies:
        ex = _Executors(sb, _policy(steps, every), bare=False)
        ex.exec_once()
        exec_wall, ours_wall = [], []
        for _ in range(repeats):
            ex.quiesce()
            exec_wall.append(ex.exec_once()[0])
            ex.quiesce()
            ours_wall.append(ex.round_trips_once()[0])
        calls = len(range(0, steps, every))
        rows.append(
            {
                "host_call_every": every,
                "host_calls": calls,
                "host_calls_per_s": round(calls / statistics.median(exec_wall)),
                "overhead_vs_exec": round(_round_ratio(ours_wall, exec_wall), 3),
            }
        )
    return rows


def _calibrate_steps(target_s: float = 0.100, probe_steps: int = 100) -> int:
    """Loop count for which the policy runs ~target_s under plain exec() on this machine."""
    get_obj_pos = _host()
    code = _policy(probe_steps)
    times = []
    for _ in range(5):
        ns = {"get_obj_pos": get_obj_pos}
        start = time.perf_counter()
        exec(code, ns)  # noqa: S102 - timing the baseline
        times.append(time.perf_counter() - start)
    per_step = min(times) / probe_steps
    return max(300, round(target_s / per_step / 50) * 50)


def _round_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of numerator / denominator measured in the same round."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def _p90(samples: list[float]) -> float:
    return sorted(samples)[int(0.9 * (len(samples) - 1))]


ISOLATIONS = ("auto", "bwrap", "landlock")
# The figures a multi-run report takes the median of (the targets are stated on these).
HEADLINE = (
    "warm_start_ms_p50",
    "rpc_us_p50",
    "overhead_vs_exec",
    "ratio_vs_smolagents",
    "overhead_vs_exec_round_trips",
    "overhead_vs_floor",
)


def run(args: argparse.Namespace) -> int:
    isolations = [i.strip() for i in args.isolation.split(",") if i.strip()]
    if not isolations or any(i not in ISOLATIONS for i in isolations):
        raise SystemExit(f"--isolation takes a comma-separated list of {', '.join(ISOLATIONS)}")
    if args.runs < 1:
        raise SystemExit("--runs takes a positive number")
    everies = [int(k) for k in args.every.split(",") if k.strip()]
    if any(k < 1 for k in everies):
        raise SystemExit("--every takes positive integers")
    if len(isolations) == 1 and args.runs == 1:
        result = _measure(args, isolations[0], everies)
        if args.json:
            print(json.dumps(result))
        else:
            _print(result, args.repeats)
        return 0
    runs: dict[str, list[dict]] = {i: [] for i in isolations}
    for _ in range(args.runs):  # boundaries alternate, so a slow minute does not land on one of them
        for isolation in isolations:
            runs[isolation].append(_measure(args, isolation, everies))
    summary = {"runs": args.runs, "by_isolation": {i: _summary(rows) for i, rows in runs.items()}}
    if args.json:
        print(json.dumps(summary))
        return 0
    for isolation, block in summary["by_isolation"].items():
        print(f"{isolation} ({block['isolation']}), median of {args.runs} runs [min, max]:")
        for key in HEADLINE:
            if block["median"].get(key) is not None:
                print(
                    f"  {key:30s} {block['median'][key]:10.3f}   [{block['min'][key]:.3f}, "
                    f"{block['max'][key]:.3f}]"
                )
    return 0


def _summary(rows: list[dict]) -> dict:
    med = statistics.median
    keys = [k for k in HEADLINE if all(r.get(k) is not None for r in rows)]
    return {
        "isolation": rows[0]["isolation"],
        "median": {k: round(med(r[k] for r in rows), 3) for k in keys},
        "min": {k: min(r[k] for r in rows) for k in keys},
        "max": {k: max(r[k] for r in rows) for k in keys},
        "each": rows,
    }


def _measure(args: argparse.Namespace, isolation: str, everies: list[int]) -> dict:
    from capstan.sandbox import Sandbox

    steps = args.steps or _calibrate_steps()
    code = _policy(steps)
    load_before = os.getloadavg()[0]
    with Sandbox(pool_size=2, isolation=isolation) as sb:
        sb.wait_ready()
        starts = _warm_start(sb, args.starts)
        trips = _round_trips(sb)
        executors = _Executors(sb, code)
        try:
            samples = _interleaved(executors, args.repeats)
        finally:
            executors.close()
        sweep = _call_rate_sweep(sb, steps, everies, args.repeats)
        isolation = sb.isolation["mode"]
    values = {name: rows[-1][2] for name, rows in samples.items() if rows}
    if any(abs(v - values["exec"]) > 1e-9 for v in values.values()):
        raise RuntimeError(f"executors disagree on ret_val: {values}")
    wall = {name: [r[0] for r in rows] for name, rows in samples.items()}
    cpu = {name: [r[1] for r in rows] for name, rows in samples.items()}
    med = statistics.median
    t_exec = med(wall["exec"])
    t_smol = med(wall["smolagents"]) if wall["smolagents"] else None
    # smolagents runs every other round: compare it with our run of the same round
    smol_rounds = range(0, len(wall["exec"]), 2)

    def vs_exec(name: str) -> float:
        return round(_round_ratio(wall[name], wall["exec"]), 3)

    def vs_smolagents(name: str) -> float | None:
        if not wall["smolagents"]:
            return None
        return round(_round_ratio(wall["smolagents"], [wall[name][i] for i in smol_rounds]), 2)

    result = {
        "isolation": isolation,
        "load_avg_1m": round((load_before + os.getloadavg()[0]) / 2, 2),
        "cpus": os.cpu_count(),
        "warm_start_ms_p50": round(med(starts) * 1e3, 3),
        "warm_start_ms_p90": round(_p90(starts) * 1e3, 3),
        "rpc_us_p50": round(med(trips) * 1e6, 1),
        "rpc_us_p90": round(_p90(trips) * 1e6, 1),
        "policy_host_calls": steps,
        "exec_ms": round(t_exec * 1e3, 2),
        "smolagents_ms": round(t_smol * 1e3, 2) if t_smol is not None else None,
        "sandbox_ms": round(med(wall["sandbox"]) * 1e3, 2),
        "sandbox_round_trips_ms": round(med(wall["round_trips"]) * 1e3, 2),
        "floor_ms": round(med(wall["floor"]) * 1e3, 2),
        "overhead_vs_exec": vs_exec("sandbox"),
        "overhead_vs_exec_best": round(min(wall["sandbox"]) / min(wall["exec"]), 3),
        "overhead_vs_exec_cpu": round(_round_ratio(cpu["sandbox"], cpu["exec"]), 3),
        "overhead_vs_exec_round_trips": vs_exec("round_trips"),
        "overhead_floor_vs_exec": vs_exec("floor"),
        "overhead_vs_floor": round(_round_ratio(wall["round_trips"], wall["floor"]), 3),
        "ratio_vs_smolagents": vs_smolagents("sandbox"),
        "ratio_vs_smolagents_round_trips": vs_smolagents("round_trips"),
        "host_calls_per_s": round(steps / t_exec),
        "overhead_by_call_rate": sweep,
    }
    return result


def _print(result: dict, repeats: int) -> None:
    isolation, steps = result["isolation"], result["policy_host_calls"]
    print(
        f"sandbox benchmark (isolation: {isolation}; load average {result['load_avg_1m']} on "
        f"{result['cpus']} CPUs)"
    )
    print(
        f"  warm start        p50 {result['warm_start_ms_p50']:8.3f} ms   p90 "
        f"{result['warm_start_ms_p90']:.3f} ms"
        "   (target <= 5 ms)"
    )
    print(
        f"  host round trip   p50 {result['rpc_us_p50']:8.1f} us   p90 {result['rpc_us_p90']:.1f} us   "
        "(target <= 100 us)"
    )
    print(f"  benign policy ({steps} host calls), median of {repeats} interleaved rounds:")
    print(f"    plain exec()              {result['exec_ms']:9.2f} ms")
    print(
        f"    exec() + bare process hop {result['floor_ms']:9.2f} ms   (each call a blocking round trip to a "
        "minimal process)"
    )
    smol = (
        f"{result['smolagents_ms']:9.2f} ms"
        if result["smolagents_ms"] is not None
        else "(smolagents not installed)"
    )
    print(f"    smolagents LocalPython    {smol}")
    print(f"    capstan sandbox           {result['sandbox_ms']:9.2f} ms   (reads pure, as on the simulator)")
    print(
        f"    capstan, round trips      {result['sandbox_round_trips_ms']:9.2f} ms   (every call a round "
        "trip, as on a remote robot)"
    )
    print(
        f"  overhead_vs_exec    {result['overhead_vs_exec']:.3f}   (median of per-round wall ratios; target "
        "<= 1.5)"
    )
    print(
        f"    best-of-{repeats} wall {result['overhead_vs_exec_best']:.3f}, CPU time "
        f"{result['overhead_vs_exec_cpu']:.3f}; "
        f"round trips {result['overhead_vs_exec_round_trips']:.3f}"
    )
    print(
        f"  floor: a bare process hop alone {result['overhead_floor_vs_exec']:.3f} x exec; "
        f"ours with round trips {result['overhead_vs_floor']:.3f} x that floor"
    )
    if result["smolagents_ms"] is not None:
        print(
            f"  ratio_vs_smolagents {result['ratio_vs_smolagents']:.2f}   (smolagents / ours; "
            f"round trips {result['ratio_vs_smolagents_round_trips']:.2f})"
        )
    print(
        f"  overhead of round trips by host-call rate (one call per iteration: {result['host_calls_per_s']} "
        "calls/s):"
    )
    for row in result["overhead_by_call_rate"]:
        print(
            f"    every {row['host_call_every']:>3d}th iteration ({row['host_calls_per_s']:>5d} calls/s): "
            f"overhead_vs_exec {row['overhead_vs_exec']:.3f}"
        )
