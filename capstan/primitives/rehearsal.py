"""Dry runs on the live world of a backend that can snapshot and restore (the simulator), what
any rehearsal reports, and the choice of rehearsal by backend.

SnapshotRehearsal: snapshot, run the program with no frames rendered and its events kept aside,
read the scene, restore. Runs of one session never overlap, so nobody sees the world in between.
A backend that cannot snapshot (a real robot) is rehearsed on a simulated twin instead
(`capstan.sim.twin.TwinRehearsal`). Each satisfies `capstan.lmp.rehearsal.Rehearsal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    twin: bool = False  # it ran on a simulated twin of the robot, not on the robot's own world
    frames: list[Any] = field(default_factory=list)  # RGB frames (H, W, 3 uint8) of it, when recorded


class RehearsalUnavailable(RuntimeError):
    """A program cannot be rehearsed here (no rehearsal fits the backend, or its twin cannot be
    built); where a passing rehearsal is required, nothing runs for real. The message says why."""


class _Rehearsal(Protocol):  # lmp.rehearsal.Rehearsal, which primitives cannot import
    def can_rehearse(self, api: PolicyAPI) -> bool: ...

    def rehearse(self, api: PolicyAPI, run: Callable[[], RunError | None]) -> Rehearsed: ...


class PerBackendRehearsal:
    """The first of `choices` that can rehearse on the API's backend does (e.g. the live world of a
    backend that snapshots, else a twin)."""

    def __init__(self, *choices: _Rehearsal):
        self.choices = choices

    def _choice(self, api: PolicyAPI) -> _Rehearsal | None:
        return next((c for c in self.choices if c.can_rehearse(api)), None)

    def can_rehearse(self, api: PolicyAPI) -> bool:
        return self._choice(api) is not None

    def rehearse(self, api: PolicyAPI, run: Callable[[], RunError | None]) -> Rehearsed:
        choice = self._choice(api)
        if choice is None:
            raise RehearsalUnavailable(f"no rehearsal fits a {type(api.backend).__name__}")
        return choice.rehearse(api, run)


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
