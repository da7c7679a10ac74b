"""Dry runs on the live world of a backend that can snapshot and restore (the simulator).

Snapshot, run the program with no frames rendered and its events kept aside, read the scene,
restore. Runs of one session never overlap, so nobody sees the world in between. Satisfies
`capstan.lmp.rehearsal.Rehearsal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from capstan.primitives.api import PolicyAPI
from capstan.primitives.outcome import RunError
from capstan.primitives.scene_state import SceneState


@dataclass
class Rehearsed:
    """What a rehearsal reports: the program's error (or None), the scene before and after, the
    primitive calls it made and what it said."""

    error: RunError | None
    before: SceneState
    after: SceneState
    calls: list[dict] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


class SnapshotRehearsal:
    def can_rehearse(self, api: PolicyAPI) -> bool:
        return api.backend.supports_snapshots

    def rehearse(self, api: PolicyAPI, run: Callable[[], RunError | None]) -> Rehearsed:
        backend = api.backend
        before = backend.state()
        snap = backend.snapshot()
        try:
            with api.aside() as (calls, said), backend.headless():
                error = run()
            after = backend.state()
        finally:
            backend.restore(snap)
        return Rehearsed(error, before, after, calls, said)
