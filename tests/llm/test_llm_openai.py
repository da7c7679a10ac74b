"""OpenAI and OpenAI-compatible providers against recorded API responses at the HTTP layer."""

from __future__ import annotations

import httpx
import pytest
from llm_http import RecordedServer

from capstan.llm.base import (
    AuthenticationError,
    CompletionRequest,
    LLMTimeoutError,
    Message,
    ProviderUnavailableError,
    RateLimitError,
)
from capstan.llm.openai_provider import OpenAIProvider

REQUEST = CompletionRequest(
    messages=(
        Message("system", "You write robot policy code."),
        Message("user", "# put the green block in the red bowl"),
        Message("assistant", "put_first_on_second('green block', 'red bowl')"),
        Message("user", "# put the red block on the blue bowl"),
    ),
    max_tokens=128,
    stop=("\n#", "objects = "),
    prefix_messages=3,
)


def provider(server: RecordedServer, retry, **kw) -> OpenAIProvider:
    return OpenAIProvider("gpt-4o-mini", "sk-test-123", retry=retry, http_client=server.client(), **kw)


def test_success_maps_text_usage_and_cached_tokens(retry):
    server = RecordedServer("openai_chat_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert c.text == "put_first_on_second('red block', 'blue bowl')"
    assert (c.prompt_tokens, c.completion_tokens, c.cached_prompt_tokens) == (1843, 14, 1792)
    assert c.finish_reason == "stop" and c.model == "gpt-4o-mini-2024-07-18" and c.provider == "openai"
    assert c.latency_s > 0 and c.ttft_s is None and c.extra["retries"] == 0


def test_request_sent_has_auth_messages_stop_and_token_limit(retry):
    server = RecordedServer("openai_chat_success.json")
    provider(server, retry).complete(REQUEST)
    (sent,) = server.requests
    assert sent.url == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    body = server.body()
    assert body["model"] == "gpt-4o-mini"
    assert body["stop"] == ["\n#", "objects = "]
    assert body["max_completion_tokens"] == 128 and "max_tokens" not in body
    assert body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "# put the red block on the blue bowl"


def test_no_stop_key_when_request_has_no_stop(retry):
    server = RecordedServer("openai_chat_success.json")
    provider(server, retry).complete(CompletionRequest(messages=(Message("user", "hi"),)))
    assert "stop" not in server.body()


def test_429_is_retried_after_the_retry_after_header(retry, sleeps):
    server = RecordedServer("openai_429.json", "openai_chat_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert c.text.startswith("put_first_on_second")
    assert sleeps == [2.0] and len(server.requests) == 2 and c.extra["retries"] == 1


def test_429_that_persists_raises_rate_limit_error(retry, sleeps):
    server = RecordedServer("openai_429.json")
    with pytest.raises(RateLimitError, match="CAPSTAN_LLM_MAX_RETRIES"):
        provider(server, retry).complete(REQUEST)
    assert len(server.requests) == 3 and sleeps == [2.0, 2.0]


def test_500_is_retried_with_exponential_backoff_and_jitter(retry, sleeps):
    server = RecordedServer("openai_500.json", "openai_500.json", "openai_chat_success.json")
    c = provider(server, retry).complete(REQUEST)
    assert c.extra["retries"] == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_500_that_persists_names_the_url(retry):
    server = RecordedServer("openai_500.json")
    with pytest.raises(ProviderUnavailableError, match=r"https://api.openai.com/v1 failed with HTTP 500"):
        provider(server, retry).complete(REQUEST)


def test_401_is_not_retried_and_names_the_key_variable(retry, sleeps):
    server = RecordedServer("openai_401.json")
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as info:
        provider(server, retry).complete(REQUEST)
    assert "Incorrect API key" in str(info.value)
    assert len(server.requests) == 1 and sleeps == []


def test_transport_timeout_is_retried_then_raises_llm_timeout(retry):
    server = RecordedServer(httpx.ReadTimeout("timed out"))
    with pytest.raises(LLMTimeoutError, match="CAPSTAN_LLM_TIMEOUT_S"):
        provider(server, retry, timeout_s=5).complete(REQUEST)
    assert len(server.requests) == 3


def test_timeout_then_success_recovers(retry):
    server = RecordedServer(httpx.ReadTimeout("timed out"), "openai_chat_success.json")
    assert provider(server, retry).complete(REQUEST).extra["retries"] == 1


def test_unreachable_server_names_the_url(retry):
    server = RecordedServer(httpx.ConnectError("[Errno 111] Connection refused"))
    p = OpenAIProvider(
        "qwen",
        "x",
        base_url="http://127.0.0.1:9/v1",
        name="openai-compatible",
        retry=retry,
        http_client=server.client(),
    )
    with pytest.raises(ProviderUnavailableError, match=r"http://127.0.0.1:9/v1"):
        p.complete(REQUEST)


def test_openai_compatible_uses_base_url_and_max_tokens(retry):
    server = RecordedServer("openai_chat_success.json")
    p = OpenAIProvider(
        "qwen2.5-coder",
        "not-needed",
        base_url="http://127.0.0.1:8080/v1/",
        name="openai-compatible",
        retry=retry,
        http_client=server.client(),
    )
    c = p.complete(REQUEST)
    assert server.requests[0].url == "http://127.0.0.1:8080/v1/chat/completions"
    assert server.body()["max_tokens"] == 128 and "max_completion_tokens" not in server.body()
    assert c.provider == "openai-compatible"


def test_streaming_measures_ttft_and_reads_usage_from_the_last_chunk(retry):
    server = RecordedServer("openai_chat_stream.sse")
    c = provider(server, retry, stream=True).complete(REQUEST)
    assert c.text == "say('hello')"
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.latency_s
    assert (c.prompt_tokens, c.completion_tokens, c.cached_prompt_tokens) == (1843, 5, 1664)
    assert c.finish_reason == "stop"
    body = server.body()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
