"""`capstan bench e2e` through its real path (two in-process services on loopback, HTTP, sandbox,
simulator, media), with a scripted model: every figure the issue asks for is there and means what
it says."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time

import pytest

from capstan.bench import e2e
from capstan.bench.memory import pss_mb
from capstan.llm.scripted import ScriptedProvider

pytestmark = pytest.mark.slow


def answer(request) -> str:
    """put_first_on_second(first, second) for a command naming two objects, else a spoken answer."""
    command = request.messages[-1].content.rsplit("# command:", 1)[-1]
    named = re.findall(r"the (\w+ (?:block|bowl))", command)
    if len(named) >= 2:
        return f"```python\nput_first_on_second('{named[0]}', '{named[1]}')\n```"
    return "```python\nsay('I cannot do that yet')\n```"


@pytest.fixture(scope="module")
def figures(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setattr("capstan.llm.from_config", lambda *a, **k: ScriptedProvider([answer] * 500))
    out = tmp_path_factory.mktemp("e2e")
    args = argparse.Namespace(json=True, repeats=1, programs=16, no_memory=False, out=out, pause=0.2)
    assert e2e.run(args) == 0
    return json.loads((out / "e2e.json").read_text())


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_every_class_is_timed_and_split(figures):
    for kind in ("simple", "simple_media_off", "simple_after_pause", "compositional", "multi_turn"):
        assert figures[f"{kind}_n"] > 0
        assert figures[f"{kind}_p50_s"] > 0
        split = figures[f"{kind}_split_p50_s"]
        assert set(split) == {"llm_s", "sandbox_s", "motion_s", "media_s", "http_s"}
    assert figures["simple_succeeded"] == figures["simple_n"] == len(e2e.SIMPLE)
    assert figures["simple_split_p50_s"]["motion_s"] > 0  # the pick-and-place really moved
    for row in figures["items"]["simple"]:
        parts = sum(row[p] for p in ("llm_s", "sandbox_s", "motion_s", "media_s", "http_s"))
        assert parts == pytest.approx(row["wall_s"], abs=0.02)


def test_media_off_skips_the_media(figures):
    on, off = figures["items"]["simple"], figures["items"]["simple_media_off"]
    assert all(r["put_args"] for r in on + off)
    # frames are neither captured during the motion nor encoded afterwards
    assert figures["simple_media_off_split_p50_s"]["media_s"] < figures["simple_split_p50_s"]["media_s"]
    assert figures["pick_place_headless_p50_s"] > 0
    assert figures["pick_place_ratio_vs_headless"] > 0


def test_memory_and_throughput_are_reported(figures):
    memory = figures["memory_mb"]
    assert 0 < memory["started"] <= memory["sessions_8"]
    assert memory["after_16_programs"] > 0
    assert figures["throughput"]["programs"] == 16
    assert figures["throughput"]["failed"] == []
    assert figures["uncached_prompt_tokens_simple"] is not None
    assert figures["uncached_prompt_tokens_simple_after_pause"] is not None and figures["pause_s"] == 0.2


def test_the_load_loses_and_mixes_nothing(figures):
    load = figures["load"]
    assert load["runs"] == load["finished"] == load["succeeded"] == 40
    assert load["lost"] == 0 and load["mixed"] == []
    assert load["refused_429"] >= 0 and load["runs_per_s"] > 0


def test_pss_counts_children():
    alone = pss_mb()
    touch_200_mb = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", touch_200_mb])
    try:
        deadline = time.monotonic() + 20
        while pss_mb() < alone + 150 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pss_mb() >= alone + 150
        assert pss_mb(child.pid) >= 150
    finally:
        child.kill()
        child.wait()
