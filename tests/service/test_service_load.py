"""Load on loopback: 8 sessions x 3 commands replayed from a cassette against a real `capstan serve`."""

from __future__ import annotations

import json

import pytest

from capstan.service import loadtest

pytestmark = pytest.mark.slow


def test_concurrent_sessions_lose_and_mix_nothing(capsys):
    rc = loadtest.main(["--sessions", "8", "--runs", "3", "--cap-s", "120", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [] and rc == 0
    assert report["completed_runs"] == report["stored_runs"] == 24 and report["lost_runs"] == 0
    assert 0 < report["latency_p50_s"] <= report["latency_p99_s"] <= 120
    assert report["throughput_runs_per_s"] > 0


def test_scripted_answers_follow_the_command():
    from capstan.llm.base import CompletionRequest, Message

    def ask(text):
        return loadtest.scripted_answer(CompletionRequest(messages=(Message("user", f"# command: {text}"),)))

    assert "put_first_on_second('red block', 'cyan bowl')" in ask("put the red block in the cyan bowl")
    assert "get_obj_pos('red block')" in ask("tell me where the red block is")
    assert "place('gray bowl')" in ask("pick up the pink block and put it back in the gray bowl")
    plan = loadtest.workload(8, 3)
    names = [n for p in plan for n in p["objects"]]
    assert len(names) == len(set(names)) == 16  # every session has objects no other session has
