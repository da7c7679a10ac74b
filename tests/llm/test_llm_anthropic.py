"""Anthropic provider against recorded Messages API responses: prompt caching, retries, errors."""

from __future__ import annotations

import httpx2 as httpx  # this anthropic SDK release is built on httpx2 (same API as httpx)
import pytest
from llm_http import RecordedServer as _RecordedServer

from capstan.llm.anthropic_provider import AnthropicProvider, build_params
from capstan.llm.base import AuthenticationError, CompletionRequest, LLMTimeoutError, Message, RateLimitError

FEW_SHOT = (
    Message("system", "You write robot policy code."),
    Message("user", "# put the green block in the red bowl"),
    Message("assistant", "put_first_on_second('green block', 'red bowl')"),
)
REQUEST = CompletionRequest(
    messages=(*FEW_SHOT, Message("user", "# put the red block on the blue bowl")),
    max_tokens=256,
    stop=("\n#",),
    prefix_messages=3,
)
CACHE = {"type": "ephemeral"}


def RecordedServer(*script):
    return _RecordedServer(*script, http=httpx)


def provider(server: _RecordedServer, retry) -> AnthropicProvider:
    return AnthropicProvider(
        "claude-3-5-haiku-latest", "sk-ant-test", retry=retry, http_client=server.client()
    )


def test_success_maps_text_and_cache_usage(retry):
    server = RecordedServer("anthropic_messages_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert c.text == "put_first_on_second('red block', 'blue bowl')"
    assert c.prompt_tokens == 51 + 1792 and c.cached_prompt_tokens == 1792 and c.completion_tokens == 17
    assert c.extra["cache_creation_input_tokens"] == 0
    assert c.finish_reason == "stop" and c.model == "claude-3-5-haiku-20241022" and c.provider == "anthropic"


def test_request_puts_system_apart_and_cache_control_on_the_last_prefix_block(retry):
    server = RecordedServer("anthropic_messages_success.json")
    provider(server, retry).complete(REQUEST)
    (sent,) = server.requests
    assert sent.url == "https://api.anthropic.com/v1/messages"
    # Older SDK releases send x-api-key; anthropic 2.x sends the key as a bearer token.
    assert "sk-ant-test" in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
    assert "anthropic-version" in sent.headers
    body = server.body()
    assert body["system"] == [{"type": "text", "text": "You write robot policy code."}]
    assert body["stop_sequences"] == ["\n#"] and body["max_tokens"] == 256 and "temperature" not in body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "put_first_on_second('green block', 'red bowl')", "cache_control": CACHE}
    ]
    marked = [b for m in body["messages"] for b in m["content"] if "cache_control" in b]
    assert len(marked) == 1  # only the end of the fixed prefix; the command itself is not cached


def test_prefix_of_only_the_system_message_marks_the_system_block():
    params = build_params("m", CompletionRequest(messages=REQUEST.messages, prefix_messages=1))
    assert params["system"][-1]["cache_control"] == CACHE
    assert not any("cache_control" in b for m in params["messages"] for b in m["content"])


def test_no_prefix_hint_means_no_cache_control_and_no_stop():
    params = build_params("m", CompletionRequest(messages=(Message("user", "hi"),)))
    assert "system" not in params and "stop_sequences" not in params
    assert params["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_429_waits_retry_after_then_succeeds(retry, sleeps):
    server = RecordedServer("anthropic_429.json", "anthropic_messages_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert sleeps == [3.0] and c.extra["retries"] == 1


def test_429_that_persists_raises_rate_limit_error(retry):
    server = RecordedServer("anthropic_429.json")
    with pytest.raises(RateLimitError, match="50,000 input tokens"):
        provider(server, retry).complete(REQUEST)
    assert len(server.requests) == 3


def test_500_and_529_overloaded_are_retried(retry, sleeps):
    server = RecordedServer("anthropic_500.json", "anthropic_529.json", "anthropic_messages_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert c.extra["retries"] == 2 and len(sleeps) == 2


def test_401_names_the_key_variable_without_retrying(retry):
    server = RecordedServer("anthropic_401.json")
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY") as info:
        provider(server, retry).complete(REQUEST)
    assert "invalid x-api-key" in str(info.value) and len(server.requests) == 1


def test_timeout_raises_llm_timeout_after_retries(retry):
    server = RecordedServer(httpx.ReadTimeout("timed out"))
    with pytest.raises(LLMTimeoutError, match="api.anthropic.com"):
        provider(server, retry).complete(REQUEST)
    assert len(server.requests) == 3


def test_streaming_measures_ttft_and_reads_cache_write_usage(retry):
    server = RecordedServer("anthropic_messages_stream.sse")
    p = AnthropicProvider(
        "claude-3-5-haiku-latest", "k", retry=retry, stream=True, http_client=server.client()
    )
    c = p.complete(REQUEST)
    assert c.text == "say('hello')" and c.finish_reason == "stop"
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.latency_s
    assert (c.prompt_tokens, c.cached_prompt_tokens, c.completion_tokens) == (51 + 1792, 0, 6)
    assert c.extra["cache_creation_input_tokens"] == 1792 and c.extra["id"] == "msg_01StReAmXyZ9aBcDeFgHiJkL"
    assert server.body()["stream"] is True
