"""LLM providers behind one small interface, local model files, and record/replay cassettes.

Public face (imported lazily so `import llm` stays cheap):
`from_config(env)` picks a provider from environment settings (see `describe_config()`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AnthropicProvider": "capstan.llm.anthropic_provider",
    "AuthenticationError": "capstan.llm.base",
    "CassetteProvider": "capstan.llm.cassette",
    "CassetteMissError": "capstan.llm.base",
    "Completion": "capstan.llm.base",
    "CompletionRequest": "capstan.llm.base",
    "LLMError": "capstan.llm.base",
    "LLMProvider": "capstan.llm.base",
    "LLMTimeoutError": "capstan.llm.base",
    "LocalProvider": "capstan.llm.local",
    "Message": "capstan.llm.base",
    "ModelFilesError": "capstan.llm.model_files",
    "OpenAIProvider": "capstan.llm.openai_provider",
    "ProviderUnavailableError": "capstan.llm.base",
    "RateLimitError": "capstan.llm.base",
    "RetryPolicy": "capstan.llm.retry",
    "ScriptedProvider": "capstan.llm.scripted",
    "describe_config": "capstan.llm.config",
    "from_config": "capstan.llm.config",
    "resolve_model_path": "capstan.llm.model_files",
}

__all__ = [
    "AnthropicProvider",
    "AuthenticationError",
    "CassetteMissError",
    "CassetteProvider",
    "Completion",
    "CompletionRequest",
    "LLMError",
    "LLMProvider",
    "LLMTimeoutError",
    "LocalProvider",
    "Message",
    "ModelFilesError",
    "OpenAIProvider",
    "ProviderUnavailableError",
    "RateLimitError",
    "RetryPolicy",
    "ScriptedProvider",
    "describe_config",
    "from_config",
    "resolve_model_path",
]


if TYPE_CHECKING:  # pragma: no cover - what type checkers and editors see
    from capstan.llm.anthropic_provider import AnthropicProvider
    from capstan.llm.base import (
        AuthenticationError,
        CassetteMissError,
        Completion,
        CompletionRequest,
        LLMError,
        LLMProvider,
        LLMTimeoutError,
        Message,
        ProviderUnavailableError,
        RateLimitError,
    )
    from capstan.llm.cassette import CassetteProvider
    from capstan.llm.config import describe_config, from_config
    from capstan.llm.local import LocalProvider
    from capstan.llm.model_files import ModelFilesError, resolve_model_path
    from capstan.llm.openai_provider import OpenAIProvider
    from capstan.llm.retry import RetryPolicy
    from capstan.llm.scripted import ScriptedProvider


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
