"""The Capstan service: HTTP API, run manager, trace store, CLI and web page.

Public face (imported lazily so `import app` stays cheap): `Settings` (env settings),
`Service` (assembled parts), `create_app(service)` (FastAPI app), `SQLiteStore`/`TraceStore`, `main` (CLI).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "capstan.service.config",
    "SQLiteStore": "capstan.service.store",
    "Service": "capstan.service.service",
    "Settings": "capstan.service.config",
    "TraceStore": "capstan.service.store",
    "create_app": "capstan.service.api",
    "main": "capstan.service.cli",
}

__all__ = ["ConfigError", "SQLiteStore", "Service", "Settings", "TraceStore", "create_app", "main"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
