"""Statistics, summaries and `capstan bench compare`."""

from __future__ import annotations

import argparse
import json

import pytest

from capstan.bench import compare
from capstan.bench.stats import wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-3)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def _codegen(passed: dict[str, bool], model="m") -> dict:
    items = [{"id": f"flat:{k}", "passed": v} for k, v in passed.items()]
    n = len(items)
    return {
        "suite": "robocode",
        "model": model,
        "flat": {"pass_at_1": sum(passed.values()) / n, "n": n},
        "items": items,
    }


def run_compare(tmp_path, a: dict, b: dict, *extra: str, capsys=None) -> tuple[int, str]:
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    parser = argparse.ArgumentParser()
    compare.build_parser(parser)
    code = compare.run(parser.parse_args([str(pa), str(pb), *extra]))
    return code, capsys.readouterr().out


def test_compare_lists_improved_and_regressed(tmp_path, capsys):
    a = _codegen({"p1": True, "p2": False, "p3": True})
    b = _codegen({"p1": True, "p2": True, "p3": False, "p4": True})
    code, out = run_compare(tmp_path, a, b, "--json", capsys=capsys)
    result = json.loads(out)
    assert code == 0
    assert result["improved"] == ["flat:p2"] and result["regressed"] == ["flat:p3"]
    assert result["only_in_b"] == ["flat:p4"] and result["unchanged"] == 1
    assert result["metrics"]["flat pass@1"]["delta"] == pytest.approx(0.75 - 2 / 3, abs=1e-4)


def test_compare_fails_on_regression_only_when_asked(tmp_path, capsys):
    a, b = _codegen({"p1": True}), _codegen({"p1": False})
    assert run_compare(tmp_path, a, b, capsys=capsys)[0] == 0
    code, out = run_compare(tmp_path, a, b, "--fail-on-regression", capsys=capsys)
    assert code == 1 and "regressed (1): flat:p1" in out


def test_compare_task_suite_per_family(tmp_path, capsys):
    def tasks(ok: bool) -> dict:
        return {
            "suite": "tasks",
            "success_rate": float(ok),
            "n": 1,
            "per_family": {"stacking": {"success_rate": float(ok)}},
            "items": [{"id": "stacking/0", "success": ok}],
        }

    _, out = run_compare(tmp_path, tasks(False), tasks(True), capsys=capsys)
    assert "stacking success rate" in out and "+100.0 points" in out and "improved (1): stacking/0" in out


def test_compare_refuses_different_suites(tmp_path, capsys):
    with pytest.raises(SystemExit, match="cannot compare"):
        run_compare(tmp_path, _codegen({"p": True}), {"suite": "tasks", "items": []}, capsys=capsys)


def test_task_summary_per_family_rates_intervals_and_categories():
    from capstan.bench.tasks import render_markdown, summarize

    rows = [
        {"id": "stacking/0", "family": "stacking", "success": True, "commands": ["stack"]},
        {"id": "stacking/1", "family": "stacking", "success": False, "category": "physics_failure"},
        {"id": "refusal/0", "family": "refusal", "success": False, "category": "code_error"},
        {"id": "refusal/1", "status": "error", "error": "RuntimeError: boom"},
    ]
    s = summarize(rows, {"suite": "tasks"})
    assert (s["n"], s["successes"], s["success_rate"]) == (4, 1, 0.25)
    assert s["per_family"]["stacking"]["success_rate"] == 0.5
    assert s["per_family"]["stacking"]["ci95"] == [round(v, 4) for v in wilson_interval(1, 2)]
    assert s["per_family"]["refusal"]["failures"]["harness_error"] == 1
    assert s["failure_categories"] == {
        "timeout": 0,
        "code_error": 1,
        "physics_failure": 1,
        "wrong_program": 0,
        "harness_error": 1,
    }
    md = render_markdown(s)
    assert "| stacking | 2 | 1 | 50.0% |" in md and "refusal/1 | harness_error" in md
