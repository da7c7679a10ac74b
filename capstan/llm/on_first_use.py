"""A provider started the first time it is asked something, for a one-off run whose program may
never ask (`capstan run --program`): loading the local model costs seconds and a gigabyte."""

from __future__ import annotations

import threading
from collections.abc import Callable

from capstan.llm.base import Completion, CompletionRequest, LLMProvider, ProviderUnavailableError


class OnFirstUse(LLMProvider):
    """Wraps `start()`, called once, on the first `complete`; a start that fails is that call's
    ProviderUnavailableError (and the next call's: it is not tried again)."""

    def __init__(self, start: Callable[[], LLMProvider], name: str, model: str = ""):
        self._start = start
        self._lock = threading.Lock()
        self._provider: LLMProvider | None = None
        self._failure: str | None = None
        self.name, self.model = name, model

    def complete(self, request: CompletionRequest) -> Completion:
        return self._started().complete(request)

    def _started(self) -> LLMProvider:
        with self._lock:
            if self._provider is None and self._failure is None:
                try:
                    self._provider = self._start()
                    self.name, self.model = self._provider.name, self._provider.model
                except Exception as exc:  # noqa: BLE001 - whatever stops it, the call that needed it fails
                    self._failure = f"{type(exc).__name__}: {exc}"
            if self._provider is None:
                raise ProviderUnavailableError(f"the language model could not start ({self._failure})")
            return self._provider

    def close(self) -> None:
        with self._lock:
            if self._provider is not None:
                self._provider.close()
