"""OpenAI chat completions (and any OpenAI-compatible server) through the official `openai` SDK."""

from __future__ import annotations

import time

import httpx

from capstan.llm.base import Completion, CompletionRequest
from capstan.llm.remote import RemoteProvider
from capstan.llm.retry import RetryPolicy

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIProvider(RemoteProvider):
    """`name` is "openai" or "openai-compatible". Set `stream=True` to measure time to first token.

    `max_tokens_field` is "max_completion_tokens" for api.openai.com (newer models reject
    "max_tokens") and "max_tokens" for compatible servers such as llama.cpp's."""

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        name: str = "openai",
        key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        stream: bool = False,
        max_tokens_field: str | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        import openai

        self.name = name
        self.model = model
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self.key_env = key_env
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.stream = stream
        self.max_tokens_field = max_tokens_field or (
            "max_completion_tokens" if self.base_url == OPENAI_URL else "max_tokens"
        )
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout_s,
            max_retries=0,  # retries are ours: see llm.retry
            # openai's annotation names only httpx2.Client; it accepts an httpx.Client too (its
            # _base_client checks for both), and httpx is what this provider's callers hand in
            http_client=http_client,  # pyright: ignore[reportArgumentType]
        )

    def _params(self, request: CompletionRequest) -> dict:
        params: dict = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            self.max_tokens_field: request.max_tokens,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        return params

    def _whole(self, params: dict, start: float) -> Completion:
        response = self._client.chat.completions.create(**params)
        choice = response.choices[0]
        completion = Completion(
            text=choice.message.content or "",
            model=response.model or self.model,
            provider=self.name,
            finish_reason=choice.finish_reason,
            extra={"id": response.id},
        )
        _apply_usage(completion, response.usage)
        return completion

    def _streamed(self, params: dict, start: float) -> Completion:
        stream = self._client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        parts: list[str] = []
        ttft = None
        finish = None
        usage = None
        model = self.model
        with stream:
            for chunk in stream:
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        parts.append(choice.delta.content)
                    finish = choice.finish_reason or finish
        completion = Completion(
            text="".join(parts), model=model, provider=self.name, ttft_s=ttft, finish_reason=finish
        )
        if usage is None:  # servers that ignore stream_options (llama.cpp's): one chunk is about one token
            completion.completion_tokens = len(parts)
            completion.extra["usage_estimated"] = True
        _apply_usage(completion, usage)
        return completion


def _apply_usage(completion: Completion, usage) -> None:
    if usage is None:
        return
    completion.prompt_tokens = usage.prompt_tokens or 0
    completion.completion_tokens = usage.completion_tokens or 0
    details = getattr(usage, "prompt_tokens_details", None)
    completion.cached_prompt_tokens = (getattr(details, "cached_tokens", None) or 0) if details else 0
