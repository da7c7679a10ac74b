"""Operator approval in the service: a program waits, code and rehearsal on show, until someone
approves or rejects it (POST /v1/runs/{id}/approve | reject, or the page), the timeout passes, or
the run is cancelled.

`OperatorGate` is the `lmp.approval.ApprovalGate` the run manager hands the engine for a run on a
robot that requires approval (CAPSTAN_APPROVAL). While it waits, the run manager shows the run as
`awaiting_approval` and lends its run slot to other sessions' runs (`park` / `unpark`): a person
may take minutes to answer, and nobody else's run should wait for that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from capstan.lmp.approval import Decision

TIMEOUT_BY = "timeout"  # who "decided" when nobody did in time
ESTOP_BY = "e-stop"  # who "decided" when the run was cancelled while waiting
RESERVED_BY = (TIMEOUT_BY, ESTOP_BY)  # no operator may sign as these: the trace must tell them apart


class NotAwaitingApproval(RuntimeError):
    """Approve or reject for a run that has no program waiting for a decision (HTTP 409)."""


class Pending:
    """One program waiting for a decision. The first decision wins; later ones are refused, so a
    late approval can never overrule a timeout or an e-stop."""

    def __init__(self, attempt: int, code: str, dry_runs: list[dict]):
        self.attempt, self.code, self.dry_runs = attempt, code, dry_runs
        self.requested_at = time.time()
        self.decision: Decision | None = None
        self._lock = threading.Lock()
        self._decided = threading.Event()

    def settle(self, decision: Decision) -> bool:
        """Record `decision` unless one was made already; True when it was recorded."""
        with self._lock:
            if self.decision is not None:
                return False
            self.decision = decision
        self._decided.set()
        return True

    def cancel(self) -> bool:
        """Reject it because the run was cancelled (e-stop) while it waited."""
        why = "cancelled while awaiting approval"
        return self.settle(Decision(False, ESTOP_BY, reason=why, verified=True))

    def wait(self, timeout_s: float) -> Decision:
        """The decision, or a rejection by "timeout" after `timeout_s` seconds without one."""
        if not self._decided.wait(timeout_s):
            self.settle(
                Decision(
                    False,
                    TIMEOUT_BY,
                    reason=f"nobody decided within {timeout_s:g} s (CAPSTAN_APPROVAL_TIMEOUT_S)",
                    verified=True,
                )
            )
        decision = self.decision
        if decision is None:  # the event is only set after a decision is stored
            raise RuntimeError("approval event set without a decision")
        return decision


class OperatorGate:
    """An ApprovalGate for one run: `park(pending)` when a program starts waiting, `unpark(pending)`
    once it is decided (both from the run's own thread), with a wait of at most `timeout_s` between."""

    def __init__(
        self,
        timeout_s: float,
        park: Callable[[Pending], None],
        unpark: Callable[[Pending], None],
    ):
        self.timeout_s = timeout_s
        self.park, self.unpark = park, unpark

    def decide(self, attempt: int, code: str, dry_runs: list[dict]) -> Decision:
        pending = Pending(attempt, code, dry_runs)
        self.park(pending)
        try:
            return pending.wait(self.timeout_s)
        finally:
            self.unpark(pending)
