"""The LLM a benchmark worker uses: `llm.from_config` plus resumable cassette recording.

Recording appends to the cassette; when a recording is interrupted and rerun, requests already in
the cassette are answered from it (replay first) and only the missing ones go to the model, so a
rerun resumes instead of paying for every call again.
"""

from __future__ import annotations

from pathlib import Path

from bench.options import worker_env
from llm.base import CassetteMissError, Completion, CompletionRequest, LLMProvider


class ReplayFirst(LLMProvider):
    """Answer from `recorded` when it has the request, else from `recorder` (which appends)."""

    def __init__(self, recorded: LLMProvider, recorder: LLMProvider):
        self.recorded, self.recorder = recorded, recorder
        self.name, self.model = recorder.name, recorder.model

    def complete(self, request: CompletionRequest) -> Completion:
        try:
            return self.recorded.complete(request)
        except CassetteMissError:
            return self.recorder.complete(request)

    def close(self) -> None:
        self.recorder.close()


def build_llm(overrides: dict[str, str]) -> LLMProvider:
    import llm
    from llm.cassette import CassetteProvider

    env = worker_env(overrides)
    provider = llm.from_config(env)
    path = env.get("CAPSTAN_CASSETTE")
    if env.get("CAPSTAN_CASSETTE_MODE") == "record" and path and Path(path).exists():
        return ReplayFirst(CassetteProvider(path, "replay", model=provider.model), provider)
    return provider
