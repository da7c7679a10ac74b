"""The openai-compatible provider against a REAL local server: llama-cpp-python's OpenAI-style
server on loopback, serving the real local model."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from llm_model import model_path_or_skip

from capstan.llm import from_config
from capstan.llm.base import CompletionRequest, Message
from tests.servers import wait_for_http

pytestmark = pytest.mark.model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    model = model_path_or_skip()
    pytest.importorskip("sse_starlette", reason="needs `pip install 'llama-cpp-python[server]'`")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--model_alias",
                "qwen-local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_http(f"{url}/models", proc, 120, log.read_text)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


REQUEST = CompletionRequest(
    messages=(
        Message("system", "Answer with Python code only."),
        Message("user", "# say hello"),
        Message("assistant", "say('hello')"),
        Message("user", "# say goodbye"),
    ),
    max_tokens=12,
    stop=("\n#",),
    prefix_messages=3,
)


def env(url: str, **extra: str) -> dict[str, str]:
    return {
        "CAPSTAN_LLM": "openai-compatible",
        "CAPSTAN_LLM_BASE_URL": url,
        "CAPSTAN_LLM_MODEL": "qwen-local",
        "CAPSTAN_LLM_TIMEOUT_S": "120",
        **extra,
    }


def test_completion_through_the_openai_compatible_provider(server_url):
    c = from_config(env(server_url)).complete(REQUEST)
    assert "goodbye" in c.text
    assert c.provider == "openai-compatible" and c.prompt_tokens > 10 and 0 < c.completion_tokens <= 12
    assert c.latency_s > 0


def test_streaming_records_time_to_first_token(server_url):
    c = from_config(env(server_url, CAPSTAN_LLM_STREAM="1")).complete(REQUEST)
    assert "goodbye" in c.text
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.latency_s
    assert 0 < c.completion_tokens <= 12  # reported usage, or counted chunks where the server sends none
