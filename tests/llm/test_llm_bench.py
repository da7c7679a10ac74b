"""`capstan bench llm` end to end on a replayed cassette (the local-model figures need the real model)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from capstan.bench import llm as bench_llm
from capstan.llm.cassette import CassetteProvider
from capstan.llm.config import model_name
from capstan.llm.scripted import ScriptedProvider


def test_typical_request_is_a_long_few_shot_prompt_with_a_fixed_prefix():
    request, source = bench_llm.typical_request(bench_llm.COMMANDS[0])
    assert 0 < request.prefix_messages < len(request.messages)
    assert sum(len(m.content) for m in request.messages) > 5000  # ~2k tokens or more
    assert bench_llm.COMMANDS[0] in request.messages[-1].content
    assert source  # which prompt was used is reported


def test_builtin_prompt_has_the_same_shape():
    request = bench_llm._builtin_request("stack the blocks")
    assert request.prefix_messages == len(request.messages) - 1
    assert sum(len(m.content) for m in request.messages) > 5000


def test_bench_reports_the_documented_json_keys(tmp_path, monkeypatch, capsys):
    cassette = tmp_path / "capstan.bench.jsonl"
    env = {"CAPSTAN_LLM": "openai", "CAPSTAN_LLM_MODEL": "gpt-4o-mini"}
    recorder = CassetteProvider(
        cassette, "record", inner=ScriptedProvider(["say('a')", "say('b')"], model_name(env))
    )
    for command in bench_llm.COMMANDS:
        recorder.complete(bench_llm.typical_request(command)[0])
    for key, value in {**env, "CAPSTAN_CASSETTE": str(cassette), "CAPSTAN_CASSETTE_MODE": "replay"}.items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    bench_llm.build_parser(parser)
    assert bench_llm.run(parser.parse_args(["--json"])) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"ttft_cold_s", "ttft_warm_s", "latency_s", "tokens_per_s"} <= set(figures)
    assert figures["answer_warm"] == "say('b')" and figures["latency_s"] >= 0


def test_llm_config_module_prints_the_settings():
    out = subprocess.run(
        [sys.executable, "-m", "capstan.llm.config"], capture_output=True, text=True, check=True
    ).stdout
    assert "CAPSTAN_LLM" in out and "CAPSTAN_CASSETTE_MODE" in out
