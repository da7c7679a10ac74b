"""from_config picks the documented provider; errors name the setting to fix; describe_config is complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capstan import llm
from capstan.llm import describe_config, from_config
from capstan.llm.anthropic_provider import AnthropicProvider
from capstan.llm.base import AuthenticationError, LLMError, ProviderUnavailableError
from capstan.llm.cassette import CassetteProvider
from capstan.llm.model_files import ModelFilesError
from capstan.llm.openai_provider import OpenAIProvider


def test_openai_needs_its_key():
    with pytest.raises(AuthenticationError, match="set OPENAI_API_KEY"):
        from_config({"CAPSTAN_LLM": "openai"})
    p = from_config({"CAPSTAN_LLM": "openai", "OPENAI_API_KEY": "sk-x", "CAPSTAN_LLM_MODEL": "gpt-4.1"})
    assert (
        isinstance(p, OpenAIProvider) and p.model == "gpt-4.1" and p.base_url == "https://api.openai.com/v1"
    )


def test_anthropic_needs_its_key():
    with pytest.raises(AuthenticationError, match="set ANTHROPIC_API_KEY"):
        from_config({"CAPSTAN_LLM": "anthropic"})
    p = from_config(
        {
            "CAPSTAN_LLM": "anthropic",
            "ANTHROPIC_API_KEY": "k",
            "CAPSTAN_LLM_TIMEOUT_S": "7",
            "CAPSTAN_LLM_MAX_RETRIES": "5",
        }
    )
    assert isinstance(p, AnthropicProvider) and p.timeout_s == 7.0 and p.retry.max_retries == 5


def test_openai_compatible_needs_url_and_model_but_no_key():
    with pytest.raises(LLMError, match="CAPSTAN_LLM_BASE_URL"):
        from_config({"CAPSTAN_LLM": "openai-compatible", "CAPSTAN_LLM_MODEL": "qwen"})
    with pytest.raises(LLMError, match="CAPSTAN_LLM_MODEL"):
        from_config({"CAPSTAN_LLM": "openai-compatible", "CAPSTAN_LLM_BASE_URL": "http://127.0.0.1:8080/v1"})
    p = from_config(
        {
            "CAPSTAN_LLM": "openai-compatible",
            "CAPSTAN_LLM_BASE_URL": "http://127.0.0.1:8080/v1",
            "CAPSTAN_LLM_MODEL": "qwen",
            "CAPSTAN_LLM_STREAM": "1",
        }
    )
    assert p.name == "openai-compatible" and p.max_tokens_field == "max_tokens" and p.stream


def test_unreachable_openai_compatible_server_names_the_url():
    p = from_config(
        {
            "CAPSTAN_LLM": "openai-compatible",
            "CAPSTAN_LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "CAPSTAN_LLM_MODEL": "qwen",
            "CAPSTAN_LLM_MAX_RETRIES": "0",
            "CAPSTAN_LLM_TIMEOUT_S": "2",
        }
    )
    with pytest.raises(ProviderUnavailableError, match=re.escape("http://127.0.0.1:9/v1")):
        p.complete(llm.CompletionRequest(messages=(llm.Message("user", "hi"),)))


def test_bad_values_are_named():
    with pytest.raises(LLMError, match="CAPSTAN_LLM='gemini'"):
        from_config({"CAPSTAN_LLM": "gemini"})
    with pytest.raises(LLMError, match="CAPSTAN_LLM_TIMEOUT_S"):
        from_config({"CAPSTAN_LLM": "openai", "OPENAI_API_KEY": "k", "CAPSTAN_LLM_TIMEOUT_S": "soon"})
    with pytest.raises(LLMError, match="CAPSTAN_CASSETTE_MODE"):
        from_config({"CAPSTAN_CASSETTE": "x.jsonl", "CAPSTAN_CASSETTE_MODE": "rewind"})


def test_local_with_missing_explicit_model_path_says_so(tmp_path):
    with pytest.raises(ModelFilesError, match="CAPSTAN_MODEL_PATH"):
        from_config({"CAPSTAN_MODEL_PATH": str(tmp_path / "nope.gguf"), "HF_HUB_CACHE": str(tmp_path)})


def test_cassette_record_wraps_the_configured_provider(tmp_path):
    p = from_config(
        {
            "CAPSTAN_LLM": "openai",
            "OPENAI_API_KEY": "k",
            "CAPSTAN_CASSETTE": str(tmp_path / "c.jsonl"),
            "CAPSTAN_CASSETTE_MODE": "record",
        }
    )
    assert (
        isinstance(p, CassetteProvider) and isinstance(p.inner, OpenAIProvider) and p.model == "gpt-4o-mini"
    )


def test_describe_config_lists_every_setting_the_code_reads():
    source = "".join(
        (Path(llm.__file__).parent / name).read_text() for name in ("config.py", "model_files.py")
    )
    read = set(re.findall(r"""["']((?:CAPSTAN|OPENAI|ANTHROPIC)_[A-Z_]+)["']""", source))
    text = describe_config()
    assert read and all(name in text for name in read), read - {n for n in read if n in text}


def test_public_face_is_sorted_and_importable():
    assert llm.__all__ == sorted(llm.__all__) == sorted(llm._EXPORTS)
    for name in llm.__all__:
        assert getattr(llm, name) is not None


def test_local_thread_setting_is_parsed(monkeypatch):
    from capstan.llm import local

    seen = {}
    monkeypatch.setattr(local, "LocalProvider", lambda path, settings, **kw: seen.setdefault("s", settings))
    monkeypatch.setattr("capstan.llm.model_files.resolve_model_path", lambda env: "model.gguf")
    from_config({"CAPSTAN_LLM_THREADS": "1"})
    assert seen.pop("s").n_threads == 1
    auto = from_config({})
    assert auto.n_threads == 2 and auto.adaptive_threads
    with pytest.raises(LLMError, match="CAPSTAN_LLM_THREADS"):
        from_config({"CAPSTAN_LLM_THREADS": "many"})
