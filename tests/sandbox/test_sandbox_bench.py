"""`capstan bench sandbox --json` runs end to end and reports the agreed keys."""

from __future__ import annotations

import argparse
import json

import pytest

import capstan.bench.sandbox as bench_sandbox

pytestmark = pytest.mark.slow


def test_bench_sandbox_json_keys(capsys):
    parser = argparse.ArgumentParser()
    bench_sandbox.build_parser(parser)
    args = parser.parse_args(["--json", "--steps", "20", "--repeats", "1", "--starts", "3", "--every", "4"])
    assert bench_sandbox.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "warm_start_ms_p50",
        "rpc_us_p50",
        "overhead_vs_exec",
        "ratio_vs_smolagents",
        "overhead_floor_vs_exec",
        "overhead_vs_floor",
        "overhead_vs_exec_round_trips",
        "ratio_vs_smolagents_round_trips",
    ):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["policy_host_calls"] == 20
    (row,) = result["overhead_by_call_rate"]
    assert row["host_call_every"] == 4 and row["host_calls"] == 5 and row["overhead_vs_exec"] > 0


def test_bench_sandbox_reports_the_median_of_runs_under_each_boundary(capsys):
    parser = argparse.ArgumentParser()
    bench_sandbox.build_parser(parser)
    small = ["--steps", "20", "--repeats", "1", "--starts", "3", "--every", ""]
    args = parser.parse_args(["--json", *small, "--runs", "2", "--isolation", "bwrap,landlock"])
    assert bench_sandbox.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 2 and set(result["by_isolation"]) == {"bwrap", "landlock"}
    for isolation, block in result["by_isolation"].items():
        assert block["isolation"] == isolation and len(block["each"]) == 2
        assert all(r["isolation"] == isolation for r in block["each"])
        low, mid, high = (
            block["min"]["warm_start_ms_p50"],
            block["median"]["warm_start_ms_p50"],
            block["max"]["warm_start_ms_p50"],
        )
        assert 0 < low <= mid <= high
    with pytest.raises(SystemExit, match="comma-separated list"):
        bench_sandbox.run(parser.parse_args([*small, "--isolation", "chroot"]))


def test_floor_answers_like_the_host_function():
    """The bare-process floor must compute exactly what exec() computes, or it measures nothing."""
    bare = bench_sandbox._BareProcess()
    try:
        host = bench_sandbox._host()
        for name in ("red block", "blue bowl", "green block"):
            assert bare.get_obj_pos(name).tolist() == host(name).tolist()
    finally:
        bare.close()


def test_every_kth_iteration_calls_the_host_that_often():
    calls = []
    code = bench_sandbox._policy(32, every=4)
    host = bench_sandbox._host()
    exec(code, {"get_obj_pos": lambda name: calls.append(name) or host(name)})  # noqa: S102
    assert len(calls) == 8
    assert calls[:4] == ["red block", "blue bowl", "green block", "red block"]


def test_default_policy_runs_long_enough_under_exec():
    """The issue's overhead target is for a policy of >= 50 ms: calibration aims at 100 ms."""
    steps = bench_sandbox._calibrate_steps()
    assert steps >= 300 and steps % 50 == 0
