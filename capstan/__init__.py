"""Capstan: plain-language commands become sandboxed robot policy programs.

Subpackages, bottom to top (the import-linter contracts in pyproject.toml hold the order):
`primitives` (the policy API and robot backend interface), `sim` and `sandbox` (each over
`primitives`), `llm` (providers, independent), `prompts` (data), `lmp` (code generation),
`service` (HTTP API, CLI, page: the only place that wires parts together), `bench` (benchmarks,
built through the service's factory).

This module stays import-free: the sandbox worker imports `capstan.sandbox.worker` inside its
boundary, where only this file and the sandbox package are visible.
"""

__version__ = "0.1.0"
