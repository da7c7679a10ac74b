"""Bench suites fanned out over a real Ray cluster started here (`ray start --head` on loopback,
2 CPUs), through the real CLI, give the same results as local worker processes.

The cluster's own environment names another model than the driver: replay only finds the
recordings when the driver's model choice travels with the jobs."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from benchmarks import regression

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the test extra installs Ray (scripts/setup.sh --test)")


CANONICAL = ("humaneval", "--canonical", "--limit", "8")
# the CI regression's robocode subset, replayed from its cassette: LLM path, fgen, sandbox
CASSETTE = str(regression.CASSETTES / "robocode.jsonl")
REPLAYED = ("robocode", "--limit", "5", "--cassette", CASSETTE, "--cassette-mode", "replay")
RUNS = {"canonical": CANONICAL, "replayed": REPLAYED}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Each suite run with 2 local workers and over a one-node Ray cluster (2 CPUs). Ray's servers
    listen on every interface, so the cluster and the benches run in a network namespace of their
    own that has only loopback, and in a PID namespace that takes the cluster down on exit."""
    out = tmp_path_factory.mktemp("ray")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    ray_cli = shlex.quote(str(Path(sys.executable).with_name("ray")))
    python = shlex.quote(sys.executable)
    lines = [
        "set -e",
        "export RAY_USAGE_STATS_ENABLED=0",
        # the cluster's own environment names another model than the driver chose
        f"CAPSTAN_LLM_MODEL=not-the-drivers-model {ray_cli} start --head --node-ip-address=127.0.0.1 "
        "--port=6379 --num-cpus=2 --include-dashboard=false --object-store-memory=100000000 "
        f"--temp-dir={temp} --disable-usage-stats >{out}/ray-start.log 2>&1",
    ]
    for name, argv in RUNS.items():
        for where, fan in (("local", "--workers 2"), ("ray", "--ray 127.0.0.1:6379")):
            dest = out / name / where
            lines.append(
                f"{python} -m capstan.service.cli bench {shlex.join(argv)} --no-progress --out {dest} {fan} "
                f">{out}/{name}-{where}.log 2>&1 || {{ tail -c 3000 {out}/{name}-{where}.log >&2; exit 1; }}"
            )
    env = {**os.environ, **regression.replay_env("robocode")}
    try:
        proc = subprocess.run(
            ["bwrap", "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-net", "--unshare-pid",
             "--die-with-parent", "--", "bash", "-c", "\n".join(lines)],
            env=env, capture_output=True, text=True, timeout=1500,
        )  # fmt: skip
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {
        name: {
            where: json.loads((out / name / where / f"{argv[0]}.json").read_text())
            for where in ("local", "ray")
        }
        for name, argv in RUNS.items()
    }


def by_id(summary: dict, *fields: str) -> dict:
    return {r["id"]: {f: r.get(f) for f in fields} for r in summary["items"]}


def test_canonical_solutions_over_ray_match_local_workers(results):
    local, fanned = results["canonical"]["local"], results["canonical"]["ray"]
    assert fanned["canonical"]["n"] == 8
    assert by_id(fanned, "passed", "status", "error") == by_id(local, "passed", "status", "error")
    assert fanned["canonical"]["passed"] == local["canonical"]["passed"] == 8


def test_replayed_codegen_over_ray_matches_local_workers(results):
    local, fanned = results["replayed"]["local"], results["replayed"]["ray"]
    fields = ("passed", "status", "code", "llm_calls", "helpers")
    assert all(r.get("status") == "ok" for r in fanned["items"]), [r.get("error") for r in fanned["items"]]
    assert by_id(fanned, *fields) == by_id(local, *fields)
    expected = json.loads(regression.EXPECTED.read_text())["robocode"]
    assert {i: r["passed"] for i, r in by_id(fanned, "passed").items()} == expected


def test_an_unreachable_cluster_is_a_clear_error(tmp_path, free_port):
    proc = subprocess.run(
        [sys.executable, "-m", "capstan.service.cli", "bench", "humaneval", "--canonical", "--limit", "1",
         "--no-progress", "--out", str(tmp_path), "--ray", f"127.0.0.1:{free_port}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "cannot reach the Ray cluster" in proc.stderr, proc.stderr[-2000:]
