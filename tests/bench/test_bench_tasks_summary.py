"""What `capstan bench tasks` reports beyond success: repairs by error kind, helpers, nested LMP
calls, LLM calls and command latency per family."""

from __future__ import annotations

from capstan.bench.tasks import repair_rates, summarize


def turn(status="succeeded", attempts=1, first=None, llm=1, fgen=0, nested=0, wall=1.0):
    return {
        "status": status,
        "attempts": attempts,
        "first_error_kind": first,
        "llm_calls": llm,
        "helper_calls": fgen,
        "nested_calls": nested,
        "wall_s": wall,
    }


ROWS = [
    {"id": "a", "family": "pick_place", "success": True, "turns": [turn()]},
    {
        "id": "b",
        "family": "pick_place",
        "success": True,
        "turns": [turn(attempts=2, first="primitive", llm=2)],
    },
    {
        "id": "c",
        "family": "arrangement",
        "success": False,
        "turns": [turn("failed", 3, "check", llm=5, fgen=2, nested=1, wall=9.0)],
    },
    {"id": "d", "family": "arrangement", "success": False, "turns": [turn("failed", 1, "primitive")]},
]


def test_repairs_are_counted_by_the_first_errors_kind():
    rates = repair_rates(ROWS)
    assert rates["by_kind"] == {"check": {"n": 1, "repaired": 0}, "primitive": {"n": 1, "repaired": 1}}
    assert rates["overall"] == 0.5 and rates["n"] == 2  # d had no second attempt: not a repair


def test_per_family_reports_calls_helpers_nested_and_latency():
    summary = summarize(ROWS, {"split": "unseen"})
    arr = summary["per_family"]["arrangement"]
    assert (arr["helpers"], arr["nested_calls"], arr["llm_calls_mean"], arr["command_p50_s"]) == (
        2,
        1,
        3.0,
        5.0,
    )
    assert summary["split"] == "unseen" and summary["repair_success_rate"]["overall"] == 0.5
