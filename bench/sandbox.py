"""`capstan bench sandbox`: what the sandbox costs, side by side in one run.

- warm start: `Sandbox.run("ret_val = 1")` with a warm pool (target <= 5 ms median);
- host-function round trip: intervals between consecutive calls of a no-op host function
  from a tight loop in the program (target <= 100 us median);
- the same benign policy (numpy + shapely math and a few hundred host calls, >= 50 ms) under
  plain `exec()`, smolagents' `LocalPythonExecutor` and our sandbox
  (`overhead_vs_exec` = ours / exec, target <= 1.5; `ratio_vs_smolagents` = smolagents / ours).
  The loop count is calibrated so that the policy runs at least 60 ms under exec() on this
  machine (the issue asks for >= 50 ms), keeping one host call per loop iteration.

Every timed run starts with no worker booting in the background (a boot takes a CPU for a few
hundred ms), so exec() and the sandbox see the same quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time

POLICY = """
import numpy as np
from shapely.geometry import Point, Polygon
from shapely import affinity

names = ["red block", "blue bowl", "green block"]
square = Polygon([(0, 0), (0.2, 0), (0.2, 0.2), (0, 0.2)])
total = 0.0
for i in range(STEPS):
    p = get_obj_pos(names[i % 3])
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
        help="loop iterations (= host calls) of the policy; default: enough for >= 60 ms under exec()",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per executor")
    parser.add_argument("--starts", type=int, default=25, help="warm-start samples")


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


class _Executors:
    """The ways to run the benign policy; each `*_once` returns (wall s, CPU s, ret_val)."""

    def __init__(self, sb, code: str):
        self.sb = sb
        self.code = code
        self.get_obj_pos = _host()
        try:
            from smolagents.local_python_executor import LocalPythonExecutor
        except ImportError:  # pragma: no cover - smolagents is in the bench extra
            LocalPythonExecutor = None
        self.smol_cls = LocalPythonExecutor

    def quiesce(self) -> None:
        """Wait until no worker is booting, so no run shares the CPUs with a boot."""
        self.sb.wait_ready()

    def exec_once(self):
        ns = {"get_obj_pos": self.get_obj_pos}
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
        """CPU = this thread's CPU + the CPU the worker reports for the program."""
        wall, cpu = time.perf_counter(), time.thread_time()
        res = self.sb.run(self.code, {"get_obj_pos": self.get_obj_pos}, timeout_s=60)
        cpu = time.thread_time() - cpu + (res.cpu_s or 0.0)
        wall = time.perf_counter() - wall
        if not res.ok:
            raise RuntimeError(f"benign policy failed in the sandbox: {res.error}")
        return wall, cpu, res.values["ret_val"]


def _interleaved(ex: _Executors, repeats: int) -> dict[str, list[tuple]]:
    """Round-robin the executors so that each sees the same machine load."""
    samples: dict[str, list[tuple]] = {"exec": [], "smolagents": [], "sandbox": []}
    ex.exec_once()  # warm caches and lazy imports before timing
    for i in range(repeats):
        for name, once in (("exec", ex.exec_once), ("sandbox", ex.sandbox_once)):
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
        assert res.ok, res.error
    return samples


def _round_trips(sb, calls: int = 3000) -> list[float]:
    stamps: list[float] = []

    def noop(i):
        stamps.append(time.perf_counter())
        return i

    sb.wait_ready()
    res = sb.run(f"for i in range({calls}):\n    noop(i)", {"noop": noop}, timeout_s=60)
    assert res.ok, res.error
    return [b - a for a, b in itertools.pairwise(stamps)]


def _calibrate_steps(target_s: float = 0.060, probe_steps: int = 100) -> int:
    """Loop count for which the policy runs ~target_s under plain exec() on this machine."""
    get_obj_pos = _host()
    code = POLICY.replace("STEPS", str(probe_steps))
    times = []
    for _ in range(5):
        ns = {"get_obj_pos": get_obj_pos}
        start = time.perf_counter()
        exec(code, ns)  # noqa: S102 - timing the baseline
        times.append(time.perf_counter() - start)
    per_step = min(times) / probe_steps
    return max(300, round(target_s / per_step / 50) * 50)


def _p90(samples: list[float]) -> float:
    return sorted(samples)[int(0.9 * (len(samples) - 1))]


def run(args: argparse.Namespace) -> int:
    from sandbox import Sandbox

    steps = args.steps or _calibrate_steps()
    code = POLICY.replace("STEPS", str(steps))
    load_before = os.getloadavg()[0]
    with Sandbox(pool_size=2) as sb:
        sb.wait_ready()
        starts = _warm_start(sb, args.starts)
        trips = _round_trips(sb)
        samples = _interleaved(_Executors(sb, code), args.repeats)
        isolation = sb.isolation["mode"]
    values = {name: rows[-1][2] for name, rows in samples.items() if rows}
    if any(abs(v - values["exec"]) > 1e-9 for v in values.values()):
        raise RuntimeError(f"executors disagree on ret_val: {values}")
    exec_wall, exec_cpu = [r[0] for r in samples["exec"]], [r[1] for r in samples["exec"]]
    ours_wall, ours_cpu = [r[0] for r in samples["sandbox"]], [r[1] for r in samples["sandbox"]]
    smol_wall = [r[0] for r in samples["smolagents"]]
    med = statistics.median
    t_exec, t_ours = med(exec_wall), med(ours_wall)
    t_smol = med(smol_wall) if smol_wall else None
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
        "sandbox_ms": round(t_ours * 1e3, 2),
        "overhead_vs_exec": round(t_ours / t_exec, 3),
        "overhead_vs_exec_best": round(min(ours_wall) / min(exec_wall), 3),
        "overhead_vs_exec_cpu": round(med(ours_cpu) / med(exec_cpu), 3),
        "ratio_vs_smolagents": round(t_smol / t_ours, 2) if t_smol is not None else None,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"sandbox benchmark (isolation: {isolation}; load average {result['load_avg_1m']} on {result['cpus']} CPUs)"
    )
    print(f"  warm start        p50 {result['warm_start_ms_p50']:8.3f} ms   p90 {result['warm_start_ms_p90']:.3f} ms"
          "   (target <= 5 ms)")  # fmt: skip
    print(
        f"  host round trip   p50 {result['rpc_us_p50']:8.1f} us   p90 {result['rpc_us_p90']:.1f} us   (target <= 100 us)"
    )
    print(f"  benign policy ({steps} host calls), median of {args.repeats} interleaved runs:")
    print(f"    plain exec()              {result['exec_ms']:9.2f} ms")
    smol = f"{result['smolagents_ms']:9.2f} ms" if t_smol is not None else "(smolagents not installed)"
    print(f"    smolagents LocalPython    {smol}")
    print(f"    capstan sandbox           {result['sandbox_ms']:9.2f} ms")
    print(f"  overhead_vs_exec    {result['overhead_vs_exec']:.3f}   (median wall time; target <= 1.5)")
    print(
        f"    best-of-{args.repeats} wall {result['overhead_vs_exec_best']:.3f}, CPU time {result['overhead_vs_exec_cpu']:.3f}"
    )
    if t_smol is not None:
        print(f"  ratio_vs_smolagents {result['ratio_vs_smolagents']:.2f}   (smolagents / ours)")
    return 0
