"""One LLM call with its trace event: every LMP goes through `LLMCaller`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import NotRequired, TypedDict

from capstan.llm.base import Completion, CompletionRequest, LLMError, LLMProvider

EventFn = Callable[[str, dict], None]


class LLMCall(TypedDict):
    """One model call as the `llm_call` event and the trace record it (docs/CONTRACTS.md "Trace")."""

    lmp: str
    messages_ref: str
    prefix_ref: str
    messages: list[dict[str, str]]  # the per-command part; the prefix is fixed per prompt
    completion: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    latency_s: float
    ttft_s: float | None
    decoding: dict  # how the provider answered, where it tells (`DECODING`)
    error: NotRequired[str]  # a call the provider failed: "ErrorType: message", and no completion


DECODING = ("threads", "queue_s", "prefix_source", "draft_tokens", "draft_accepted")


class Cancelled(Exception):
    """The run was cancelled between steps."""


def messages_ref(request: CompletionRequest) -> str:
    blob = json.dumps([asdict(m) for m in request.messages], sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


class LLMCaller:
    """Calls the provider, emits `llm_call` and keeps the payloads in `log`."""

    def __init__(
        self, llm: LLMProvider, on_event: EventFn | None = None, cancel: threading.Event | None = None
    ):
        self.llm = llm
        self.on_event = on_event
        self.cancel = cancel
        self.log: list[LLMCall] = []
        self._lock = threading.Lock()

    def __call__(self, lmp: str, request: CompletionRequest) -> Completion:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled before calling the model")
        t0 = time.monotonic()
        try:
            completion = self.llm.complete(request)
        except LLMError as exc:  # in the trace too: every call the run made, answered or not
            failed = Completion(text="", model="", provider=getattr(self.llm, "name", ""))
            self._record(lmp, request, failed, time.monotonic() - t0, f"{type(exc).__name__}: {exc}")
            raise
        self._record(lmp, request, completion, completion.latency_s or (time.monotonic() - t0))
        return completion

    def _record(
        self, lmp: str, request: CompletionRequest, completion: Completion, latency_s: float, error: str = ""
    ) -> None:
        tail = request.messages[request.prefix_messages :]
        payload: LLMCall = {
            "lmp": lmp,
            "messages_ref": messages_ref(request),
            "prefix_ref": messages_ref(
                CompletionRequest(messages=request.messages[: request.prefix_messages])
            ),
            "messages": [asdict(m) for m in tail],
            "completion": completion.text,
            "model": completion.model,
            "provider": completion.provider,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cached_prompt_tokens": completion.cached_prompt_tokens,
            "latency_s": latency_s,
            "ttft_s": completion.ttft_s,
            "decoding": {k: completion.extra[k] for k in DECODING if k in completion.extra},
        }
        if error:
            payload["error"] = error
        with self._lock:
            self.log.append(payload)
        if self.on_event is not None:
            self.on_event("llm_call", dict(payload))
