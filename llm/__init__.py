"""LLM providers behind one small interface, local model files, and record/replay cassettes.

Public face (imported lazily so `import llm` stays cheap):
`from_config(env)` picks a provider from environment settings (see `describe_config()`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AnthropicProvider": "llm.anthropic_provider",
    "AuthenticationError": "llm.base",
    "CassetteProvider": "llm.cassette",
    "CassetteMissError": "llm.base",
    "Completion": "llm.base",
    "CompletionRequest": "llm.base",
    "LLMError": "llm.base",
    "LLMProvider": "llm.base",
    "LLMTimeoutError": "llm.base",
    "LocalProvider": "llm.local",
    "Message": "llm.base",
    "ModelFilesError": "llm.model_files",
    "OpenAIProvider": "llm.openai_provider",
    "ProviderUnavailableError": "llm.base",
    "RateLimitError": "llm.base",
    "RetryPolicy": "llm.retry",
    "ScriptedProvider": "llm.scripted",
    "describe_config": "llm.config",
    "from_config": "llm.config",
    "resolve_model_path": "llm.model_files",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
