"""The LLM a benchmark worker uses: `llm.from_config` plus resumable cassette recording.

Recording appends to the cassette; when a recording is interrupted and rerun, requests already in
the cassette are answered from it (replay first) and only the missing ones go to the model, so a
rerun resumes instead of paying for every call again. A request repeated within one run (greedy
decoding) is answered from memory and recorded once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from capstan.bench.options import worker_env
from capstan.llm.base import CassetteMissError, Completion, CompletionRequest, LLMProvider


class ReplayFirst(LLMProvider):
    """Answer from `recorded` when it has the request, else from `recorder` (which appends).

    Requests recorded during this run are answered from memory too: greedy decoding gives the
    same answer to the same request (flat and hierarchical generation share their first call)."""

    def __init__(self, recorded: LLMProvider | None, recorder: LLMProvider):
        self.recorded, self.recorder = recorded, recorder
        self.name, self.model = recorder.name, recorder.model
        self._memo: dict[str, Completion] = {}
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        key = request.key(self.model)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        if self.recorded is not None:
            try:
                return self.recorded.complete(request)
            except CassetteMissError:
                pass
        completion = self.recorder.complete(request)
        if request.temperature == 0:
            with self._lock:
                self._memo[key] = completion
        return completion

    def close(self) -> None:
        self.recorder.close()


def build_llm(overrides: dict[str, str]) -> LLMProvider:
    from capstan import llm
    from capstan.llm.cassette import CassetteProvider

    env = worker_env(overrides)
    provider = llm.from_config(env)
    path = env.get("CAPSTAN_CASSETTE")
    if env.get("CAPSTAN_CASSETTE_MODE") == "record" and path:
        recorded = CassetteProvider(path, "replay", model=provider.model) if Path(path).exists() else None
        return ReplayFirst(recorded, provider)
    return provider
