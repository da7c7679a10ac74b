"""The Capstan service: HTTP API, run manager, trace store, CLI and web page.

Public face (imported lazily so `import app` stays cheap): `Settings` (env settings),
`Service` (assembled parts), `create_app(service)` (FastAPI app), `SQLiteStore`/`TraceStore`, `main` (CLI).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "app.config",
    "SQLiteStore": "app.store",
    "Service": "app.service",
    "Settings": "app.config",
    "TraceStore": "app.store",
    "create_app": "app.api",
    "main": "app.cli",
}

__all__ = ["ConfigError", "SQLiteStore", "Service", "Settings", "TraceStore", "create_app", "main"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
