"""How a run ends, in the terms every layer shares: its status, and when it failed a `RunError`
with one of the `ErrorKind`s.

It lives at the bottom so that the sandbox (which produces most errors), lmp (which adds its own
and repairs programs from them) and the service (which stores and serves them) use one type. The
enums are `StrEnum`s: a member is equal to its string, so stored rows, traces and the HTTP API
carry exactly the strings they always did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RunStatus(enum.StrEnum):
    """A run's lifecycle: QUEUED -> RUNNING -> one of the final statuses; a run that needs an
    operator's approval goes RUNNING -> AWAITING_APPROVAL -> RUNNING before its program moves the robot."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"  # waiting for an operator to approve or reject its program
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the service stopped while the run was queued or running

    @property
    def final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)


class ErrorKind(enum.StrEnum):
    """Why a run (or one attempt of it) failed."""

    # from the sandbox: the program itself
    SYNTAX = "syntax"  # it does not parse
    VIOLATION = "violation"  # the static policy refused it (an import, a dunder, ...)
    POLICY = "policy"  # it raised at run time
    PRIMITIVE = "primitive"  # a primitive refused or failed (a PrimitiveError)
    TIMEOUT = "timeout"  # wall clock, CPU budget or host-call budget exhausted
    MEMORY = "memory"  # over its address-space limit
    CANCELLED = "cancelled"  # e-stop or a cancelled run
    CRASH = "crash"  # the worker died or misbehaved
    # from code generation (lmp)
    CHECK = "check"  # a static check of the generated program failed
    NO_CODE = "no_code"  # the model's answer held no code
    LLM = "llm"  # the model could not be asked
    # from a dry run that refused the program (lmp.rehearsal)
    OFF_TABLE = "off_table"
    LEFT_WORKSPACE = "left_workspace"
    NO_EFFECT = "no_effect"
    NOT_REHEARSED = "not_rehearsed"  # a rehearsal was required (a real robot) and could not happen
    # from an operator (lmp.approval)
    REJECTED = "rejected"  # not approved (rejected, timed out or e-stopped while waiting): it never ran
    # from the service
    INTERNAL = "internal"  # a bug: the engine raised
    INTERRUPTED = "interrupted"  # the service stopped during the run


# The kinds a sandbox run can end with.
SANDBOX_ERROR_KINDS = (
    ErrorKind.SYNTAX,
    ErrorKind.VIOLATION,
    ErrorKind.POLICY,
    ErrorKind.PRIMITIVE,
    ErrorKind.TIMEOUT,
    ErrorKind.MEMORY,
    ErrorKind.CANCELLED,
    ErrorKind.CRASH,
)


@dataclass(frozen=True)
class RunError:
    """Why a run or an attempt failed; `line` is a line of the program, or None."""

    kind: ErrorKind
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.kind}{where}: {self.message}"

    def to_dict(self) -> dict[str, str | int | None]:
        """The serialised form in events, traces, stored rows and the HTTP API."""
        return {"kind": str(self.kind), "message": self.message, "line": self.line}

    def shifted(self, by: int) -> RunError:
        """The same error with its line shifted up by `by` (None when that leaves the program)."""
        line = self.line - by if self.line else None
        return RunError(self.kind, self.message, line if line and line > 0 else None)
