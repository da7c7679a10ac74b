"""What every provider reached through an official SDK shares: one retry loop and one error mapping."""

from __future__ import annotations

import abc
import time

from capstan.llm.base import Completion, CompletionRequest, LLMProvider
from capstan.llm.retry import RetryPolicy, call_with_retries
from capstan.llm.sdk_errors import to_llm_error


class RemoteProvider(LLMProvider):
    """Subclasses set `base_url`, `key_env`, `timeout_s`, `retry` and `stream`, build the SDK's
    parameters in `_params` and make one attempt in `_whole` or `_streamed`."""

    base_url: str
    key_env: str = ""
    timeout_s: float = 60.0
    retry: RetryPolicy
    stream: bool = False

    def complete(self, request: CompletionRequest) -> Completion:
        params = self._params(request)
        start = time.perf_counter()
        attempt = self._streamed if self.stream else self._whole
        try:
            completion, retries = call_with_retries(lambda: attempt(params, start), self.retry)
        except Exception as exc:
            raise to_llm_error(
                exc,
                provider=self.name,
                url=self.base_url,
                key_env=self.key_env,
                model=self.model,
                timeout_s=self.timeout_s,
                retries=self.retry.max_retries,
            ) from exc
        completion.latency_s = time.perf_counter() - start
        completion.extra["retries"] = retries
        return completion

    @abc.abstractmethod
    def _params(self, request: CompletionRequest) -> dict: ...

    @abc.abstractmethod
    def _whole(self, params: dict, start: float) -> Completion: ...

    @abc.abstractmethod
    def _streamed(self, params: dict, start: float) -> Completion: ...
