"""What fits where between the layers, stated for pyright (which checks this file with the packages;
see [tool.pyright] in pyproject.toml). Nothing here runs: each function only type-checks when its
argument satisfies the protocol it returns."""

from __future__ import annotations

from capstan.lmp.executor import PolicyExecutor
from capstan.lmp.rehearsal import Rehearsal
from capstan.primitives.rehearsal import SnapshotRehearsal
from capstan.sandbox.executor import Sandbox


def the_sandbox_runs_lmps_programs(sandbox: Sandbox) -> PolicyExecutor:
    return sandbox


def a_snapshot_rehearsal_is_lmps_rehearsal(rehearsal: SnapshotRehearsal) -> Rehearsal:
    return rehearsal
