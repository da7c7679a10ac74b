"""What code generation needs from whatever runs its programs: `PolicyExecutor`.

lmp gets its executor handed in and never imports one. `capstan.sandbox.Sandbox` satisfies the
protocol structurally (pyright checks it: tests/packaging/typed_seams.py); a test double needs only
these three methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from capstan.primitives.outcome import RunError


class StaticProblem(Protocol):
    """One reason the static check refuses a program."""

    @property
    def line(self) -> int | None: ...

    @property
    def message(self) -> str: ...


class Execution(Protocol):
    """How one run of a program went."""

    @property
    def ok(self) -> bool: ...

    @property
    def error(self) -> RunError | None: ...

    @property
    def values(self) -> dict[str, Any]: ...


class PolicyExecutor(Protocol):
    def check(self, code: str, allowed_names: Iterable[str] | None = None) -> Sequence[StaticProblem]:
        """The static check alone: its problems, empty when the program may run."""
        ...

    def star_names(self, code: str) -> set[str]:
        """The names the program's `from M import *` of allowed modules bind."""
        ...

    def run(
        self,
        code: str,
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        timeout_s: float = 60.0,
        return_names: Iterable[str] = ("ret_val",),
        cancel: threading.Event | None = None,
        pure: Iterable[str] = (),
    ) -> Execution:
        """Run `code` with `host_functions` callable from it; `values` holds the `return_names` it bound."""
        ...
