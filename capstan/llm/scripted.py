"""A scripted provider: the test double for code that calls an LLM (lmp, app tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from capstan.llm.base import Completion, CompletionRequest, LLMError, LLMProvider

Reply = str | Exception | Callable[[CompletionRequest], str]


class ScriptedProvider(LLMProvider):
    """Answers requests from a script, in order. A reply is a string, an exception to raise, or a
    function of the request. `requests` keeps every request received; running out is an LLMError."""

    name = "scripted"

    def __init__(self, replies: Iterable[Reply], model: str = "scripted") -> None:
        self.model = model
        self._replies = list(replies)
        self._lock = threading.Lock()
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completion:
        with self._lock:
            self.requests.append(request)
            if not self._replies:
                raise LLMError(
                    f"scripted provider ran out of replies after {len(self.requests) - 1} requests"
                )
            reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        text = reply(request) if callable(reply) else reply
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        return Completion(
            text=text,
            model=self.model,
            provider=self.name,
            prompt_tokens=prompt_words,
            completion_tokens=len(text.split()),
            finish_reason="stop",
        )
