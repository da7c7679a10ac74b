"""Cassettes: record through a provider, replay offline by request key, clear misses, thread safety."""

from __future__ import annotations

import json
import threading

import pytest

from capstan.llm import from_config
from capstan.llm.base import CassetteMissError, CompletionRequest, LLMError, Message
from capstan.llm.cassette import CassetteProvider
from capstan.llm.scripted import ScriptedProvider


def request(command: str, **kw) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("system", "You write robot code."), Message("user", command)),
        prefix_messages=1,
        **kw,
    )


def test_record_then_replay_offline(tmp_path):
    path = tmp_path / "calls.jsonl"
    recorder = CassetteProvider(
        path, "record", inner=ScriptedProvider(["say('hi')", "pick('red block')"], "m1")
    )
    first = recorder.complete(request("# greet"))
    recorder.complete(request("# pick the red block"))
    assert first.text == "say('hi')"

    player = CassetteProvider(path, "replay", model="m1")  # no provider at all
    again = player.complete(request("# greet"))
    assert again.text == "say('hi')" and again.prompt_tokens == first.prompt_tokens
    assert again.completion_tokens == first.completion_tokens and again.provider == "scripted"
    assert player.complete(request("# pick the red block")).text == "pick('red block')"
    assert len(player) == 2


def test_file_is_human_readable_json_lines(tmp_path):
    path = tmp_path / "calls.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["say('hi')"], "m1")).complete(request("# greet"))
    (line,) = path.read_text().splitlines()
    entry = json.loads(line)
    assert entry["key"] == request("# greet").key("m1") and entry["model"] == "m1"
    assert entry["request"]["messages"][1] == {"role": "user", "content": "# greet"}
    assert entry["completion"]["text"] == "say('hi')"
    assert {"prompt_tokens", "completion_tokens", "cached_prompt_tokens"} <= set(entry["completion"])


def test_miss_names_key_and_first_user_message(tmp_path):
    path = tmp_path / "calls.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["x"], "m1")).complete(request("# greet"))
    player = CassetteProvider(path, "replay", model="m1")
    missing = request("# stack the blocks")
    with pytest.raises(CassetteMissError) as info:
        player.complete(missing)
    assert missing.key("m1") in str(info.value) and "# stack the blocks" in str(info.value)


def test_key_depends_on_model_and_settings(tmp_path):
    path = tmp_path / "calls.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["x"], "m1")).complete(request("# greet"))
    with pytest.raises(CassetteMissError):
        CassetteProvider(path, "replay", model="m2").complete(request("# greet"))
    with pytest.raises(CassetteMissError):
        CassetteProvider(path, "replay", model="m1").complete(request("# greet", max_tokens=7))


def test_later_recording_of_the_same_key_wins(tmp_path):
    path = tmp_path / "calls.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["old"], "m1")).complete(request("# greet"))
    CassetteProvider(path, "record", inner=ScriptedProvider(["new"], "m1")).complete(request("# greet"))
    assert len(path.read_text().splitlines()) == 2  # append-only
    assert CassetteProvider(path, "replay", model="m1").complete(request("# greet")).text == "new"


def test_missing_file_and_corrupt_line_are_clear(tmp_path):
    with pytest.raises(CassetteMissError, match="CAPSTAN_CASSETTE_MODE=record"):
        CassetteProvider(tmp_path / "none.jsonl", "replay", model="m1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a", "completion": {}}\nnot json\n')
    with pytest.raises(LLMError, match="line 2"):
        CassetteProvider(bad, "replay", model="m1")
    with pytest.raises(LLMError, match="record or replay"):
        CassetteProvider(bad, "rewind", model="m1")  # type: ignore[arg-type]


def test_concurrent_recording_keeps_every_line_whole(tmp_path):
    path = tmp_path / "calls.jsonl"
    inner = ScriptedProvider([lambda r: r.messages[-1].content.upper() * 50] * 40, "m1")
    recorder = CassetteProvider(path, "record", inner=inner)
    threads = [
        threading.Thread(target=lambda i=i: [recorder.complete(request(f"# task {i}-{j}")) for j in range(5)])
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 40 and len({json.loads(line)["key"] for line in lines}) == 40
    player = CassetteProvider(path, "replay", model="m1")
    assert player.complete(request("# task 3-4")).text == "# TASK 3-4" * 50


def test_from_config_replay_needs_no_key_or_model(tmp_path):
    path = tmp_path / "calls.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["say('hi')"], "gpt-4o-mini")).complete(
        request("# hi")
    )
    env = {"CAPSTAN_LLM": "openai", "CAPSTAN_CASSETTE": str(path), "CAPSTAN_CASSETTE_MODE": "replay"}
    assert from_config(env).complete(request("# hi")).text == "say('hi')"
