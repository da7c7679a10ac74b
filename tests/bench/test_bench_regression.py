"""CI regression: the recorded subset (benchmarks/regression.py) replays offline from the checked-in
cassettes (recorded with the real local model) and must not regress against the checked-in
expected outcomes. On failure the message says which item regressed or how to re-record."""

from __future__ import annotations

import json

import pytest

from benchmarks import regression

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    return regression.replay_all(tmp_path_factory.mktemp("regression"))


def expected() -> dict:
    return json.loads(regression.EXPECTED.read_text())


def test_the_subset_is_the_agreed_size():
    exp = expected()
    assert len(exp["robocode"]) == 15  # 5 problems x naive/flat/hierarchical
    assert len(exp["tasks"]) == 8
    assert all(isinstance(v, bool) for suite in exp.values() for v in suite.values()), "re-record: misses"


@pytest.mark.parametrize("suite", list(regression.SUBSETS))
def test_no_regressions_against_the_recording(replayed, suite):
    problems = regression.compare_to_expected(suite, replayed[suite], expected()[suite])
    assert not problems, "\n".join(problems)


def test_compare_to_expected_reports_regressions_and_misses():
    exp = {"a": True, "b": False, "c": True, "d": True}
    got = {"a": False, "b": True, "c": "miss"}
    problems = regression.compare_to_expected("tasks", got, exp)
    assert problems[0] == "tasks a: passed when recorded, fails now (regression)"
    assert "re-record with: python -m benchmarks.regression record" in problems[1]
    assert problems[2] == "tasks d: did not run"
    assert len(problems) == 3  # b improved: not a problem
