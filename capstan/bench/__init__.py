"""Benchmarks and regression suites, run as `capstan bench NAME`.

Each suite module (`bench.humaneval`, `bench.robocode`, `bench.tasks`, `bench.compare`) exposes
`build_parser(parser)` and `run(args) -> int`; `SUITES` names them for the CLI. Heavy imports
happen inside `run`, so importing `bench` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

SUITES = ("compare", "humaneval", "robocode", "tasks")

_EXPORTS = {
    "FAMILIES": "capstan.bench.tabletop",
    "Harness": "capstan.bench.harness",
    "HarnessError": "capstan.bench.harness",
    "Job": "capstan.bench.harness",
    "generate_tasks": "capstan.bench.tabletop",
    "read_problems": "capstan.bench.problems",
    "wilson_interval": "capstan.bench.stats",
}

__all__ = [
    "FAMILIES",
    "SUITES",
    "Harness",
    "HarnessError",
    "Job",
    "generate_tasks",
    "read_problems",
    "suite",
    "wilson_interval",
]


def suite(name: str):
    """The module of `capstan bench NAME` (has build_parser and run)."""
    if name not in SUITES:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(SUITES)}")
    return importlib.import_module(f"capstan.bench.{name}")


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
