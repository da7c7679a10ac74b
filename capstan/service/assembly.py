"""The one place where parts are put together: sandboxes, engines (with their rehearsal), simulated
worlds, policy APIs and spec function generators, for the service and for the benchmarks, which
measure the same assembly the service runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capstan.llm.base import LLMProvider
    from capstan.lmp.engine import Engine
    from capstan.lmp.hierarchy import FunctionGenerator
    from capstan.primitives.api import PolicyAPI
    from capstan.primitives.backend import RobotBackend
    from capstan.primitives.outcome import RunError
    from capstan.sandbox import Sandbox
    from capstan.sim import World
    from capstan.sim.twin import TwinVideo


@dataclass(frozen=True)
class EngineSettings:
    """How an engine answers a command (the service's settings, or a bench's options)."""

    timeout_s: float = 180.0  # per program run in the sandbox
    max_attempts: int = 3  # the first program and its repairs
    dry_run: bool = True  # rehearse each program on a snapshot of the world before it moves anything
    # a real robot's programs are always rehearsed on a simulated twin first; this turns that off
    unsafe_skip_twin: bool = False
    twin_video: TwinVideo | None = None  # film each rehearsal on a twin (None: no video)
    candidates: int = 3  # programs per command when more than the first is sampled
    sample_compositional: bool = False  # also sample candidates for compositional commands


def build_sandbox(
    pool_size: int = 1, extra_modules: tuple[str, ...] = (), cpu_budget_s: float = 10.0
) -> Sandbox:
    """A sandbox with the strongest OS boundary this machine offers (it refuses to start without one
    unless a loudly named unsafe mode is set); `extra_modules` widens the import allowlist."""
    from capstan.sandbox import Sandbox

    return Sandbox(pool_size=pool_size, extra_modules=tuple(extra_modules), cpu_budget_s=cpu_budget_s)


def build_engine(
    llm: LLMProvider, sandbox: Sandbox, settings: EngineSettings, real_robot: bool = False
) -> Engine:
    """A fresh engine: one per session (or bench task), so a skill library never leaks between them.

    The rehearsal is chosen per backend: the live world between a snapshot and its restore for a
    backend that snapshots (the sim), a simulated twin for the rest. For a `real_robot` a passing
    rehearsal is required before anything runs on it, generated or hand-written, whatever
    `dry_run` says (only `unsafe_skip_twin` drops it)."""
    from capstan.lmp.engine import Engine
    from capstan.primitives.rehearsal import PerBackendRehearsal, SnapshotRehearsal
    from capstan.sim.twin import TwinRehearsal

    required = real_robot and not settings.unsafe_skip_twin
    rehearse = settings.dry_run or required
    return Engine(
        llm,
        sandbox,
        max_attempts=settings.max_attempts,
        timeout_s=settings.timeout_s,
        rehearsal=(
            PerBackendRehearsal(SnapshotRehearsal(), TwinRehearsal(settings.twin_video)) if rehearse else None
        ),
        candidates=settings.candidates,
        sample_compositional=settings.sample_compositional,
        require_rehearsal=required,
    )


def build_sim(scene: dict) -> World:
    """A PyBullet tabletop built from a scene spec (raises sim.SceneError on a bad one)."""
    from capstan.sim import World

    return World(scene)


def start_frame_renderer() -> None:
    """Start the process that draws the simulator's video frames (sim.frames) ahead of the first run."""
    from capstan.sim.frames import start_renderer

    start_renderer()


def build_policy_api(backend: RobotBackend, perception: str = "truth", on_event=None) -> PolicyAPI:
    """The primitives a program calls, over `backend`, reporting each call to `on_event`."""
    from capstan.primitives.api import PolicyAPI

    return PolicyAPI(backend, perception=perception, on_event=on_event)


def build_function_generator(llm: LLMProvider, sandbox: Sandbox) -> FunctionGenerator:
    """A spec function generator whose helpers are tried in `sandbox` on their literal call sites."""
    from capstan.lmp.hierarchy import FunctionGenerator

    return FunctionGenerator(llm, star_names=sandbox.star_names, trial=sandbox_trial(sandbox))


def sandbox_trial(sandbox: Sandbox, timeout_s: float = 5.0) -> Callable[[str], str | None]:
    """Runs a program in `sandbox`: what it raised, as one line, or None."""

    def trial(program: str) -> str | None:
        res = sandbox.run(program, host_functions={}, timeout_s=timeout_s, return_names=())
        return None if res.ok else error_text(res.error)

    return trial


def error_text(err: RunError | None) -> str:
    """A sandbox run's error as one line, `kind (line n): message` (it is fed back to the model)."""
    return "unknown error" if err is None else str(err)[:300]
