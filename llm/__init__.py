"""LLM providers behind one small interface, local model files, and record/replay cassettes.

Public face (imported lazily so `import llm` stays cheap):
`from_config(env)` picks a provider from environment settings (see `describe_config()`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuthenticationError": "llm.base",
    "CassetteMissError": "llm.base",
    "Completion": "llm.base",
    "CompletionRequest": "llm.base",
    "LLMError": "llm.base",
    "LLMProvider": "llm.base",
    "LLMTimeoutError": "llm.base",
    "Message": "llm.base",
    "ModelFilesError": "llm.model_files",
    "ProviderUnavailableError": "llm.base",
    "RateLimitError": "llm.base",
    "resolve_model_path": "llm.model_files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
