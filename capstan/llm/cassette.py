"""Record and replay LLM calls: a provider wrapper backed by an append-only JSON Lines file.

Each line is one call: `{"key", "model", "provider", "request": {...}, "completion": {...}}`, where
`key` is `CompletionRequest.key(model)`. In `record` mode every call goes to the wrapped provider
and is appended; in `replay` mode calls are answered from the file only (no provider needed, fully
offline and deterministic) and a request that was never recorded raises `CassetteMissError`.
When a key appears twice the later line wins.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from capstan.llm.base import CassetteMissError, Completion, CompletionRequest, LLMError, LLMProvider

Mode = Literal["record", "replay"]
_COMPLETION_FIELDS = ("text", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "finish_reason")


class CassetteProvider(LLMProvider):
    def __init__(
        self, path: str | Path, mode: Mode, inner: LLMProvider | None = None, model: str | None = None
    ) -> None:
        if mode not in ("record", "replay"):
            raise LLMError(
                f"cassette mode {mode!r} is not known; set CAPSTAN_CASSETTE_MODE to record or replay"
            )
        if mode == "record" and inner is None:
            raise LLMError("recording a cassette needs a provider to record from")
        if not model:
            if inner is None:
                raise LLMError(
                    "replaying a cassette without a provider needs the model name (CAPSTAN_LLM_MODEL)"
                )
            model = inner.model
        self.path = Path(path)
        self.mode = mode
        self.inner = inner
        self.model = model
        self.name = inner.name if inner is not None else "cassette"
        self._lock = threading.Lock()
        self._entries = self._load()

    def _load(self) -> dict[str, dict]:
        if not self.path.exists():
            if self.mode == "replay":
                raise CassetteMissError(
                    f"cassette {self.path} does not exist; record it first with CAPSTAN_CASSETTE_MODE=record"
                )
            return {}
        entries: dict[str, dict] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries[entry["key"]] = entry
            except (ValueError, KeyError, TypeError) as exc:
                raise LLMError(f"cassette {self.path} line {number} is not a recorded call: {exc}") from None
        return entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def complete(self, request: CompletionRequest) -> Completion:
        key = request.key(self.model)
        if self.mode == "replay" or self.inner is None:  # no provider: replay only (__init__ ensures it)
            return self._replay(key, request)
        completion = self.inner.complete(request)
        entry = {
            "key": key,
            "model": self.model,
            "provider": completion.provider,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "request": asdict(request),
            "completion": {
                **{f: getattr(completion, f) for f in _COMPLETION_FIELDS},
                "model": completion.model,
                "latency_s": round(completion.latency_s, 4),
                "ttft_s": None if completion.ttft_s is None else round(completion.ttft_s, 4),
            },
        }
        line = json.dumps(entry, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            self._entries[key] = entry
        return completion

    def can_prefill(self) -> bool:
        return self.mode == "record" and self.inner is not None and self.inner.can_prefill()

    def prefill(self, request: CompletionRequest, cancel: threading.Event | None = None) -> bool:
        return self.can_prefill() and self.inner is not None and self.inner.prefill(request, cancel)

    def _replay(self, key: str, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            users = [m.content for m in request.messages if m.role == "user"] or [""]
            said = f"first user message starts {users[0][:80]!r}"
            if len(users) > 1:
                said += f", last starts {users[-1][:80]!r}"
            raise CassetteMissError(
                f"no recording in {self.path} for key {key} (model {self.model!r}, {said}); "
                "record it with CAPSTAN_CASSETTE_MODE=record"
            )
        data = entry["completion"]
        return Completion(
            **{f: data[f] for f in _COMPLETION_FIELDS},
            model=data.get("model", self.model),
            provider=entry.get("provider", self.name),
            latency_s=time.perf_counter() - start,
            extra={"cassette": str(self.path), "recorded_latency_s": data.get("latency_s")},
        )

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
