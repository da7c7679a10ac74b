"""Dry runs on the live world of a backend that can snapshot and restore (the simulator).

Snapshot, run the program with no frames rendered and its events kept aside, read the scene,
restore. Runs of one session never overlap, so nobody sees the world in between. Satisfies
`capstan.lmp.rehearsal.Rehearsal`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from capstan.primitives.api import PolicyAPI


@dataclass
class Rehearsed:
    """What a rehearsal reports: the program's error (or None), the scene before and after, the
    primitive calls it made and what it said."""

    error: dict | None
    before: dict
    after: dict
    calls: list[dict] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


class SnapshotRehearsal:
    def can_rehearse(self, api: object) -> bool:
        backend = getattr(api, "backend", None)
        return (
            isinstance(api, PolicyAPI)
            and callable(getattr(backend, "snapshot", None))
            and callable(getattr(backend, "restore", None))
        )

    def rehearse(self, api: PolicyAPI, run: Callable[[], dict | None]) -> Rehearsed:
        backend = api.backend
        before = backend.state()
        snap = backend.snapshot()  # type: ignore[attr-defined]
        headless = getattr(backend, "headless", contextlib.nullcontext)
        try:
            with api.aside() as (calls, said), headless():
                error = run()
            after = backend.state()
        finally:
            backend.restore(snap)  # type: ignore[attr-defined]
        return Rehearsed(error, before, after, calls, said)
