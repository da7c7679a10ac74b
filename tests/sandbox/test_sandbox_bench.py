"""`capstan bench sandbox --json` runs end to end and reports the agreed keys."""

from __future__ import annotations

import argparse
import json

import pytest

import bench.sandbox as bench_sandbox

pytestmark = pytest.mark.slow


def test_bench_sandbox_json_keys(capsys):
    parser = argparse.ArgumentParser()
    bench_sandbox.build_parser(parser)
    args = parser.parse_args(["--json", "--steps", "20", "--repeats", "1", "--starts", "3"])
    assert bench_sandbox.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("warm_start_ms_p50", "rpc_us_p50", "overhead_vs_exec", "ratio_vs_smolagents"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["policy_host_calls"] == 20


def test_default_policy_runs_long_enough_under_exec():
    """The issue's overhead target is for a policy of >= 50 ms: calibration aims at 60 ms."""
    steps = bench_sandbox._calibrate_steps()
    assert steps >= 300 and steps % 50 == 0
