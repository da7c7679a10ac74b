"""Resumable recording: requests already in the cassette are replayed, repeats within a run are
answered from memory, and only new requests reach the model (and get appended)."""

from __future__ import annotations

from capstan.bench.provider import ReplayFirst, build_llm
from capstan.llm.base import CompletionRequest, Message
from capstan.llm.cassette import CassetteProvider
from capstan.llm.scripted import ScriptedProvider


def req(text: str, temperature: float = 0.0) -> CompletionRequest:
    return CompletionRequest(messages=(Message("user", text),), temperature=temperature)


def test_replay_first_then_record_then_memo(tmp_path):
    path = tmp_path / "c.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["old answer"], model="m")).complete(req("old"))
    model = ScriptedProvider(["new answer", "sampled 1", "sampled 2"], model="m")
    provider = ReplayFirst(
        CassetteProvider(path, "replay", model="m"), CassetteProvider(path, "record", inner=model)
    )
    assert provider.complete(req("old")).text == "old answer"  # from the cassette
    assert provider.complete(req("new")).text == "new answer"  # from the model, recorded
    assert provider.complete(req("new")).text == "new answer"  # from memory
    assert provider.complete(req("hot", 0.7)).text == "sampled 1"  # sampling: never memoized
    assert provider.complete(req("hot", 0.7)).text == "sampled 2"
    assert [r.messages[0].content for r in model.requests] == ["new", "hot", "hot"]
    assert len(path.read_text().splitlines()) == 4


def test_build_llm_wraps_only_recording(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSTAN_LLM_MODEL", "m")
    path = tmp_path / "c.jsonl"
    CassetteProvider(path, "record", inner=ScriptedProvider(["x"], model="m")).complete(req("q"))
    replay = build_llm({"CAPSTAN_CASSETTE": str(path), "CAPSTAN_CASSETTE_MODE": "replay"})
    assert isinstance(replay, CassetteProvider) and replay.complete(req("q")).text == "x"
