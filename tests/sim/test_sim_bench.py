"""`capstan bench sim` end to end on a tiny budget (the real suite runs 300 + 50 trials)."""

from __future__ import annotations

import argparse
import json

import pytest

import capstan.bench.sim as bench_sim


@pytest.mark.slow
def test_bench_sim_smoke(capsys):
    parser = argparse.ArgumentParser()
    bench_sim.build_parser(parser)
    args = parser.parse_args(
        [
            "--json",
            "--trials",
            "2",
            "--stack-seeds",
            "1",
            "--frames",
            "1",
            "--seed",
            "3",
            "--idle-seconds",
            "2",
        ]
    )
    assert bench_sim.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "pick_place_success_rate",
        "stack4_success_rate",
        "pick_place_median_s",
        "realtime_factor",
        "frame_cost_ms",
    ):
        assert isinstance(out[key], float), key
    assert out["pick_place_trials"] == 2 and out["stack4_trials"] == 1
    assert out["pick_place_success_rate"] == 1.0 and out["stack4_success_rate"] == 1.0
    assert out["pick_place_median_s"] > 0 and out["realtime_factor"] > 1 and out["frame_cost_ms"] > 0
