"""Anthropic Messages API through the official `anthropic` SDK, with prompt caching of the fixed prefix.

System messages go to the `system` parameter. When `CompletionRequest.prefix_messages` is k > 0,
the block holding the end of the first k messages gets `cache_control: {"type": "ephemeral"}`, so
the system text and few-shot examples are cached and each command pays only for its own tokens.
"""

from __future__ import annotations

import time

from capstan.llm.base import Completion, CompletionRequest
from capstan.llm.remote import RemoteProvider
from capstan.llm.retry import RetryPolicy

ANTHROPIC_URL = "https://api.anthropic.com"
_CACHE = {"type": "ephemeral"}
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def build_params(model: str, request: CompletionRequest) -> dict:
    """The `messages.create` keyword arguments for a request (pure, so tests can inspect it)."""
    system: list[dict] = []
    messages: list[dict] = []
    last_prefix: dict | None = None
    for index, message in enumerate(request.messages):
        block = {"type": "text", "text": message.content}
        if message.role == "system":
            system.append(block)
        else:
            messages.append({"role": message.role, "content": [block]})
        if index < request.prefix_messages:
            last_prefix = block
    if last_prefix is not None:
        last_prefix["cache_control"] = dict(_CACHE)
    params: dict = {
        "model": model,
        "messages": messages,
        "max_tokens": request.max_tokens,
    }
    # No temperature: this SDK release (anthropic 2.x) no longer accepts sampling parameters.
    if system:
        params["system"] = system
    if request.stop:
        params["stop_sequences"] = list(request.stop)
    return params


class AnthropicProvider(RemoteProvider):
    name = "anthropic"

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        key_env: str = "ANTHROPIC_API_KEY",
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        stream: bool = False,
        http_client=None,  # an httpx2.Client (the HTTP package of this anthropic release), for tests
    ) -> None:
        import anthropic

        self.model = model
        self.base_url = (base_url or ANTHROPIC_URL).rstrip("/")
        self.key_env = key_env
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.stream = stream
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=self.base_url, timeout=timeout_s, max_retries=0, http_client=http_client
        )

    def _params(self, request: CompletionRequest) -> dict:
        return build_params(self.model, request)

    def _whole(self, params: dict, start: float) -> Completion:
        response = self._client.messages.create(**params)
        return self._completion(
            text="".join(b.text for b in response.content if b.type == "text"),
            model=response.model,
            usage=response.usage,
            output_tokens=response.usage.output_tokens,
            stop_reason=response.stop_reason,
            extra={"id": response.id},
        )

    def _streamed(self, params: dict, start: float) -> Completion:
        parts: list[str] = []
        ttft = None
        usage = None
        model = self.model
        message_id = None
        output_tokens = 0
        stop_reason = None
        with self._client.messages.create(**params, stream=True) as stream:
            for event in stream:
                if event.type == "message_start":
                    usage, model, message_id = event.message.usage, event.message.model, event.message.id
                    output_tokens = usage.output_tokens or 0
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    parts.append(event.delta.text)
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    output_tokens = event.usage.output_tokens or output_tokens
        completion = self._completion(
            text="".join(parts),
            model=model,
            usage=usage,
            output_tokens=output_tokens,
            stop_reason=stop_reason,
            extra={"id": message_id},
        )
        completion.ttft_s = ttft
        return completion

    def _completion(self, *, text, model, usage, output_tokens, stop_reason, extra) -> Completion:
        cache_read = (usage.cache_read_input_tokens or 0) if usage else 0
        cache_write = (usage.cache_creation_input_tokens or 0) if usage else 0
        return Completion(
            text=text,
            model=model or self.model,
            provider=self.name,
            # Anthropic's input_tokens excludes the cached and cache-written parts of the prompt.
            prompt_tokens=(usage.input_tokens if usage else 0) + cache_read + cache_write,
            completion_tokens=output_tokens,
            cached_prompt_tokens=cache_read,
            finish_reason=_FINISH.get(stop_reason or "", stop_reason),
            extra={**extra, "cache_creation_input_tokens": cache_write},
        )
