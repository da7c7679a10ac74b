"""The assembled service: store, LLM, sandbox, engine, sessions and run manager, with one lifecycle."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable

from capstan.service.assembly import (
    EngineSettings,
    build_engine,
    build_policy_api,
    build_sandbox,
    build_sim,
    start_frame_renderer,
)
from capstan.service.config import ConfigError, Settings
from capstan.service.metrics import Metrics
from capstan.service.prefill import Prefiller
from capstan.service.robots import SIM, make_backend, robot_names
from capstan.service.runs import RunManager
from capstan.service.sessions import SessionRegistry
from capstan.service.store import open_store

log = logging.getLogger("capstan.service")
VERSION = "0.1.0"


def _quiet(_msg: str) -> None:
    pass


class Service:
    """Build with `Service(settings)`; pass `llm`, `sandbox` or `engine` to use given parts instead.
    `warm_up=True` runs the fixed prompt prefix through a local model once at start; `recover=True`
    (the server) marks runs left queued/running by a previous process as interrupted, brings back
    the sessions it left and keeps its own for the next start (app.sessions); `capstan run` uses
    recover=False, so its one-off session is not kept, and `llm_on_first_use=True`, so a program
    that asks the model nothing does not wait for it to load."""

    def __init__(
        self,
        settings: Settings,
        llm=None,
        sandbox=None,
        engine=None,
        progress: Callable[[str], None] = _quiet,
        warm_up: bool = False,
        recover: bool = True,
        llm_on_first_use: bool = False,
    ):
        self.settings = settings
        self.started_at = time.time()
        self._isolation: dict | None = None
        self._owns_llm = llm is None and engine is None  # close only what this service created
        self._owns_sandbox = sandbox is None and engine is None
        self.llm, self.sandbox = llm, sandbox
        progress(f"trace store: {settings.database_url or settings.db_path}")
        self.store = open_store(settings)
        with contextlib.ExitStack() as undo:  # a start that fails stops again what it started
            undo.callback(self.store.close)
            self._start(engine, progress, warm_up, recover, llm_on_first_use, undo)
            undo.pop_all()

    def _start(
        self,
        engine,
        progress: Callable[[str], None],
        warm_up: bool,
        recover: bool,
        llm_on_first_use: bool,
        undo: contextlib.ExitStack,
    ) -> None:
        settings = self.settings
        envelopes = settings.robot_envelopes()  # first: a bad safety envelope file stops the start
        self.operators = settings.load_operators()  # so does a bad operators file
        interrupted = self.store.mark_unfinished("interrupted") if recover else []
        if interrupted:
            progress(f"marked {len(interrupted)} unfinished run(s) from a previous process as interrupted")
        self.metrics = Metrics()
        if (
            self.sandbox is None and engine is None
        ):  # first: without an OS boundary nothing else is worth loading
            progress(f"starting {settings.sandbox_pool} sandbox worker(s)...")
            self.sandbox = build_sandbox(settings.sandbox_pool)
            undo.callback(self.sandbox.close)
        _report_isolation(self.sandbox, progress)
        if self.llm is None and engine is None:
            if llm_on_first_use:
                from capstan.llm.on_first_use import OnFirstUse

                self.llm = OnFirstUse(lambda: _load_llm(progress), name=_llm_named())
            else:
                self.llm = _load_llm(progress)
            undo.callback(self.llm.close)
        engine_factory = self._engine_factory(engine)
        self.engine = engine = engine_factory(SIM)
        if settings.media:
            start_frame_renderer()
        if warm_up and getattr(self.llm, "name", "") == "local":
            progress("warming up the prompt prefix cache (first start computes it, later starts load it)...")
            t0 = time.time()
            try:
                warm_prefix(self.llm, engine)
                progress(f"  prefix cache warm in {time.time() - t0:.1f}s")
            except Exception as exc:  # noqa: BLE001 - a cold cache only makes the first command slower
                progress(f"  warm-up skipped: {type(exc).__name__}: {exc}")
        remotes, token = settings.remote_robots, settings.robot_token

        def backend_factory(robot: str, scene: dict):
            return make_backend(robot, scene, remotes, token, envelopes)

        self.robots = robot_names(remotes)
        if settings.unsafe_skip_twin and remotes:
            warning = (
                "WARNING: CAPSTAN_UNSAFE_SKIP_TWIN=1: programs move the real robots "
                f"{', '.join(remotes)} without first passing a rehearsal on their simulated twins"
            )
            log.warning(warning)
            progress(warning)
        self.prefiller = None
        if settings.prefill and engine.llm.can_prefill():
            idle = lambda: self.runs.counts() == (0, 0)  # noqa: E731 - runs is built below
            self.prefiller = Prefiller(idle, default_engine=engine, on_outcome=self.metrics.prefill)
            undo.callback(self.prefiller.close)
        self.sessions = SessionRegistry(
            settings.max_sessions,
            settings.perception,
            engine_factory,
            backend_factory,
            store=self.store if recover else None,
            idle_s=settings.session_idle_s,
            on_created=self._read_ahead,
        )
        undo.callback(self.sessions.close)
        if recover:
            revived = self.sessions.revive(log=progress)
            if revived:
                progress(f"restored {len(revived)} session(s) from before the restart")
        self.runs = RunManager(settings, self.store, engine, self.metrics, after_run=self._after_run)

    def _after_run(self, session) -> None:
        self.sessions.save(session)  # its objects moved, its conversation grew
        self._read_ahead(session)

    def _read_ahead(self, session) -> None:
        if self.prefiller is not None:
            self.prefiller.want(session)

    def _engine_factory(self, engine) -> Callable[[str], object]:
        """What gives each session its engine, by the session's robot: a new one each (so functions
        learned from one user's commands, its skill library, never show up in another session's
        prompts), or the given one. A real robot's engine runs nothing without a passing rehearsal
        on the robot's simulated twin (unless CAPSTAN_UNSAFE_SKIP_TWIN=1)."""
        if engine is not None:
            if self.settings.remote_robots and not (
                engine.require_rehearsal or self.settings.unsafe_skip_twin
            ):
                raise ConfigError(
                    "a given engine would drive real robots (CAPSTAN_ROBOTS) without their required "
                    "rehearsal on a twin: build it with require_rehearsal=True"
                )
            return lambda robot: engine
        llm, sandbox, settings = self.llm, self.sandbox, self.settings
        engine_settings = EngineSettings(
            timeout_s=settings.run_timeout_s,
            dry_run=settings.dry_run,
            unsafe_skip_twin=settings.unsafe_skip_twin,
            twin_video=twin_video(settings),
            candidates=settings.candidates,
            sample_compositional=settings.sample_compositional,
        )
        return lambda robot: build_engine(llm, sandbox, engine_settings, real_robot=robot != SIM)

    def isolation(self) -> dict:
        """The sandbox's isolation layers in force (measured once by its first worker, then cached)."""
        if self._isolation is None:
            iso = getattr(self.sandbox, "isolation", None)
            self._isolation = dict(iso) if isinstance(iso, dict) else {}
        return self._isolation

    def llm_info(self) -> dict:
        return {"provider": getattr(self.llm, "name", None), "model": getattr(self.llm, "model", None)}

    def close(self) -> None:
        self.runs.close()
        if self.prefiller is not None:
            self.prefiller.close()
        self.sessions.close()
        if self._owns_sandbox and self.sandbox is not None:
            self.sandbox.close()
        if self._owns_llm and self.llm is not None:
            self.llm.close()
        self.store.close()


def _llm_named() -> str:
    return os.environ.get("CAPSTAN_LLM", "local")


def _load_llm(progress: Callable[[str], None]):
    """The language model CAPSTAN_LLM names (the local one by default)."""
    from capstan import llm as llm_pkg

    progress(f"loading the language model (CAPSTAN_LLM={_llm_named()})...")
    t0 = time.time()
    try:
        llm = llm_pkg.from_config(os.environ)
    except Exception as exc:  # noqa: BLE001 - a missing key, model file or server: one line, not a traceback
        raise ConfigError(
            f"cannot start the language model (CAPSTAN_LLM={_llm_named()}): {type(exc).__name__}: {exc}"
        ) from exc
    progress(f"  {getattr(llm, 'name', '?')} {getattr(llm, 'model', '')} ready in {time.time() - t0:.1f}s")
    return llm


def _report_isolation(sandbox, progress: Callable[[str], None]) -> None:
    """Say which OS boundary policy code runs in; loudly (also to the log) when there is none."""
    report = (getattr(sandbox, "isolation", None) or {}) if sandbox is not None else {}
    mode = report.get("mode")
    if mode == "bwrap":
        progress("sandbox: bwrap (namespaces, read-only binds) + seccomp")
    elif mode == "landlock":
        progress(f"sandbox: landlock + seccomp (bubblewrap unusable here: {report.get('why_not_bwrap')})")
    elif mode == "unsafe-process":
        warning = (
            "UNSAFE: CAPSTAN_SANDBOX_ISOLATION=unsafe-process: policy code runs with NO OS boundary "
            "(no namespaces, the host file system readable); never expose this service"
        )
        log.warning(warning)
        progress(warning)


def twin_video(settings: Settings):
    """How rehearsals on a twin are filmed: like the runs' own video (None without media)."""
    if not settings.media:
        return None
    from capstan.service.media import FPS
    from capstan.sim.twin import TwinVideo

    return TwinVideo(fps=FPS, view=settings.video_view, max_frames=settings.max_frames)


def warm_prefix(llm, engine) -> None:
    """Send the fixed part of the main prompt (system text + core examples) with a one-token answer,
    so the local provider computes and stores the prefix state before the first real command."""
    from capstan.llm.base import CompletionRequest, Message
    from capstan.lmp.nested import policy_api_text
    from capstan.lmp.prompt import build_request

    with build_sim({"objects": ["red block", "blue bowl"], "seed": 0}) as world:
        api = build_policy_api(world)
        request = build_request(
            engine.prompts["tabletop_ui"],
            {"api": policy_api_text(api)},
            "say hello",
            ["red block", "blue bowl"],
            None,
        )
    prefix = request.messages[: request.prefix_messages]
    llm.complete(
        CompletionRequest(
            messages=(*prefix, Message("user", "# say hello")), max_tokens=1, prefix_messages=len(prefix)
        )
    )
