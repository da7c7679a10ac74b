"""Operator approval: a person (or a policy standing in for one) says yes or no before a program
moves a real robot.

The engine asks its `ApprovalGate` right before each real run, once the program has passed its
checks (and its dry runs, when it had any), and shows it the program and what the rehearsal did.
A refusal ends the attempt with `ErrorKind.REJECTED` and no repair follows: a human said no, and
asking the model for another program would only put the same question again. How long the gate
waits, and who may answer, is the gate's business (the service waits for /v1 or the page, with a
timeout).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from capstan.primitives.outcome import ErrorKind, RunError


@dataclass(frozen=True)
class Decision:
    """The answer to one approval request: yes or no, who gave it, when (epoch seconds), and why."""

    approved: bool
    by: str
    at: float = field(default_factory=time.time)
    reason: str = ""
    verified: bool = False  # `by` was proven (an operator's own token), not only stated

    def to_dict(self) -> dict:
        return asdict(self)

    def error(self) -> RunError | None:
        """None when approved; else the error the attempt ends with."""
        if self.approved:
            return None
        why = f": {self.reason}" if self.reason else ""
        return RunError(ErrorKind.REJECTED, f"not approved to run on the robot (by {self.by}{why})")


class ApprovalGate(Protocol):
    def decide(self, attempt: int, code: str, dry_runs: list[dict]) -> Decision:
        """Block until the program `code` of attempt `attempt` may run for real, or may not.
        `dry_runs` are the rehearsed candidates' summaries (the `candidate` events' data; empty
        when nothing was rehearsed)."""
        ...
