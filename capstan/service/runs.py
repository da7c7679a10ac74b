"""Run manager: queue, worker threads, cancel (e-stop), event recording and fan-out.

Runs of one session execute one after another; runs of different sessions execute in parallel, at
most `max_concurrent_runs` at once (the run slots), on worker threads. The untrusted code itself
runs in sandbox worker processes; these threads only drive the engine and the session's backend.
Every event is appended to the store as it happens, then published to live subscribers.

A run on a robot that requires operator approval (CAPSTAN_APPROVAL) waits `awaiting_approval`
before its program moves the robot, and gives its slot back meanwhile: its thread is parked and a
stand-in worker thread takes its place; once approved it takes a slot again before any queued run
(a rejected run only finishes, so it needs none).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from capstan.lmp.approval import Decision
from capstan.primitives.api import MOTION_NAMES
from capstan.primitives.errors import PrimitiveError
from capstan.primitives.jsondata import jsonable
from capstan.primitives.outcome import ErrorKind, RunError, RunStatus
from capstan.service.approvals import NotAwaitingApproval, OperatorGate, Pending
from capstan.service.events import EventHub
from capstan.service.media import FPS as FRAME_FPS
from capstan.service.media import Recorder, write_rehearsal
from capstan.service.metrics import Metrics
from capstan.service.robots import SIM
from capstan.service.sessions import Session, SessionBusyError, png_bytes
from capstan.service.store import TraceStore

log = logging.getLogger("capstan.runs")

CONTROL_PRIMITIVES = MOTION_NAMES | {"wait"}  # a frame after each: the scene may have changed
# A program may make up to the sandbox's 10,000 host calls; its trace keeps the first of these events
# and counts the rest (`events_dropped`), so one run cannot fill the service's memory and database.
CALL_EVENTS = ("primitive_call", "say")
MAX_CALL_EVENTS = 2000


class QueueFullError(RuntimeError):
    pass


class RunNotFound(KeyError):
    def __str__(self) -> str:
        return f"no run {self.args[0]!r}"


@dataclass
class Run:
    id: str
    session: Session
    kind: str  # "command" | "program"
    text: str
    status: RunStatus = RunStatus.QUEUED
    created_at: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    hub: EventHub = field(default_factory=EventHub)
    seq: int = 0
    error: RunError | None = None
    engine_done: bool = False  # set (under _cancel_lock) once the program can no longer move the robot
    holds_slot: bool = False  # counts against max_concurrent_runs (not while awaiting approval)
    left_queue_cancelled: bool = False  # taken off the queue by a cancel (under _cond): it never runs
    pending: Pending | None = None  # the program awaiting an operator's decision, if any
    media_s: float = 0.0  # drawing its frames and writing its videos, wherever in the run
    call_events: int = 0  # CALL_EVENTS emitted, recorded or not
    _seq_lock: threading.Lock = field(default_factory=threading.Lock)
    _cancel_lock: threading.Lock = field(default_factory=threading.Lock)


class RunManager:
    def __init__(
        self,
        settings,
        store: TraceStore,
        engine,
        metrics: Metrics,
        after_run: Callable[[Session], None] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.engine = engine
        self.metrics = metrics
        self.after_run = after_run  # e.g. save the session (its objects moved, its conversation grew)
        self._cond = threading.Condition()
        self._pending: list[Run] = []
        # real robots with a run going: one arm runs one program at a time, whichever session asks
        # (each program was rehearsed on the scene as it stood; another's motions would change it)
        self._robots_in_use: set[str] = set()
        self._active: dict[str, Run] = {}  # queued or running
        self._running = 0  # run slots taken
        self._workers = 0  # worker threads not parked by a run awaiting approval
        self._resuming = 0  # approved runs waiting for a slot; they go before queued runs
        self._stopping = False
        self._threads: list[threading.Thread] = []
        with self._cond:
            for _ in range(settings.max_concurrent_runs):
                self._spawn_worker()

    # ---- submission and control -------------------------------------------------------------
    def submit(self, session: Session, kind: str, text: str) -> Run:
        run = Run(id=uuid.uuid4().hex[:16], session=session, kind=kind, text=text)
        with self._cond:
            limit = self.settings.max_queued_runs
            if len(self._pending) >= limit:
                self.metrics.rejected_request("queue_full")
                raise QueueFullError(
                    f"run queue is full ({limit} waiting, CAPSTAN_MAX_QUEUED_RUNS); retry later"
                )
            share = max(1, limit // 2)  # so that one session's backlog never shuts the others out
            if sum(r.session is session for r in self._pending) >= share:
                self.metrics.rejected_request("queue_full")
                raise QueueFullError(
                    f"session {session.id} has {share} runs waiting, its share of the run queue; retry "
                    "when one has started"
                )
            doc = {
                "command": text if kind == "command" else None,
                "code": text if kind == "program" else None,
                "scene": session.scene,
                "timings": {"queued_at": run.created_at},
            }
            self.store.create_run(run.id, session.id, kind, RunStatus.QUEUED.value, doc)
            self._active[run.id] = run
            session.active_runs += 1
            self._pending.append(run)
            self._cond.notify_all()
        self._emit(run, "status", {"status": RunStatus.QUEUED.value})
        return run

    def get_active(self, run_id: str) -> Run | None:
        return self._active.get(run_id)

    def cancel(self, run_id: str) -> str:
        """E-stop: halt the robot now, kill the program; returns the run's status after the request."""
        run = self._active.get(run_id)
        if run is None:
            row = self.store.get_run(run_id)
            if row is None:
                raise RunNotFound(run_id)
            return row["status"]
        with run._cancel_lock:
            if run.engine_done:  # too late to stop anything: the run is finishing
                return run.status
            run.cancel.set()
        pending = run.pending
        if pending is not None:  # the program never runs; the engine then sees the cancel
            pending.cancel()
        with self._cond:
            self._cond.notify_all()  # an approved run waiting for a slot stops waiting
            if run.left_queue_cancelled:  # another cancel took it off the queue: nothing moves
                return RunStatus.CANCELLED.value
            queued = run in self._pending
            if queued:
                self._pending.remove(run)
                run.left_queue_cancelled = True
        if queued:
            error = RunError(ErrorKind.CANCELLED, "cancelled before it started")
            self._finish(run, RunStatus.CANCELLED, error, {})
            return RunStatus.CANCELLED.value
        with run._cancel_lock:
            if run.engine_done:  # the run already resumed the backend; stopping now would leak the e-stop
                return "cancelling"
            try:
                run.session.backend.stop()
            except Exception:
                log.exception("backend.stop() failed for session %s", run.session.id)
        return "cancelling"

    def decide(
        self, run_id: str, attempt: int, approved: bool, by: str, reason: str = "", verified: bool = False
    ) -> Decision:
        """An operator's approval or rejection of attempt `attempt`, the program run `run_id` is
        waiting with. Naming the attempt ties the decision to the program the operator read: a late
        answer about an earlier attempt never settles its repair. Raises RunNotFound, or
        NotAwaitingApproval when no program is waiting, it was just decided, or it is another attempt."""
        run = self._active.get(run_id)
        pending = run.pending if run is not None else None
        if pending is not None and pending.attempt != attempt:
            raise NotAwaitingApproval(
                f"run {run_id} awaits approval of attempt {pending.attempt}, not {attempt}: "
                "read that program first"
            )
        decision = Decision(approved, by, time.time(), reason, verified)
        if pending is not None and pending.settle(decision):
            return decision
        row = self.store.get_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        raise NotAwaitingApproval(f"run {run_id} is not awaiting approval (it is {row['status']})")

    @contextlib.contextmanager
    def robot_reserved(self, robot: str) -> Iterator[None]:
        """Hold `robot` (no run of any session starts on it) for an operator's action on it; raises
        SessionBusyError while a run, of any session, is using it."""
        with self._cond:
            if robot in self._robots_in_use:
                raise SessionBusyError(f"a run is using robot {robot!r}; cancel it or wait first")
            self._robots_in_use.add(robot)
        try:
            yield
        finally:
            with self._cond:
                self._robots_in_use.discard(robot)
                self._cond.notify_all()

    def cancel_session(self, session: Session) -> None:
        for run in list(self._active.values()):
            if run.session is session:
                self.cancel(run.id)

    def counts(self) -> tuple[int, int]:
        with self._cond:
            return self._running, len(self._pending)

    def stop_all(self) -> None:
        """E-stop every run and start no other: the service is stopping."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for run in list(self._active.values()):
            self.cancel(run.id)

    def close(self, timeout: float = 10.0) -> None:
        self.stop_all()
        for t in self._threads:
            t.join(timeout)

    # ---- events -----------------------------------------------------------------------------
    def _emit(self, run: Run, type_: str, data: dict) -> None:
        if type_ in CALL_EVENTS:
            with run._seq_lock:
                run.call_events += 1
                if run.call_events > MAX_CALL_EVENTS:
                    return
        data = jsonable(data)
        with run._seq_lock:
            seq = run.seq
            run.seq += 1
            event = {"seq": seq, "type": type_, "t": time.time(), "data": data}
            try:
                self.store.append_event(run.id, seq, type_, event["t"], data)
            except Exception:
                log.exception("could not store event %s of run %s", type_, run.id)
        run.hub.publish(event)

    # ---- workers ----------------------------------------------------------------------------
    def _spawn_worker(self) -> None:
        """Start one more worker thread (called under self._cond)."""
        self._threads = [t for t in self._threads if t.is_alive()]
        t = threading.Thread(target=self._worker, name=f"capstan-run-{len(self._threads)}", daemon=True)
        self._workers += 1
        self._threads.append(t)
        t.start()

    def _next(self) -> Run | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._workers > self.settings.max_concurrent_runs:  # a stand-in no longer needed
                    self._workers -= 1
                    return None
                if self._running < self.settings.max_concurrent_runs and not self._resuming:
                    for run in self._pending:
                        if not run.session.busy and run.session.robot not in self._robots_in_use:
                            self._pending.remove(run)
                            run.session.busy = True
                            if run.session.robot != SIM:
                                self._robots_in_use.add(run.session.robot)
                            run.holds_slot = True
                            self._running += 1
                            return run
                self._cond.wait()

    def _worker(self) -> None:
        while (run := self._next()) is not None:
            try:
                self._execute(run)
            except Exception as exc:  # never lose a worker thread
                if isinstance(exc, PrimitiveError):  # the robot failed outside a program
                    log.warning("run %s: the robot failed: %s", run.id, exc)
                    error = RunError(ErrorKind.PRIMITIVE, f"{type(exc).__name__}: {exc}")
                else:
                    log.exception("run %s crashed the run manager", run.id)
                    error = RunError(ErrorKind.INTERNAL, f"internal error: {exc}")
                if run.cancel.is_set():
                    try:
                        run.session.backend.resume()
                    except Exception:
                        log.exception("backend.resume() failed")
                self._finish(run, RunStatus.FAILED, error, {})
            finally:
                with self._cond:
                    run.session.busy = False
                    self._robots_in_use.discard(run.session.robot)
                    if run.holds_slot:
                        run.holds_slot = False
                        self._running -= 1
                    self._cond.notify_all()

    def _execute(self, run: Run) -> None:
        session = run.session
        started = time.time()
        timings = {"queued_at": run.created_at, "started_at": started}
        with session.lock:
            run.status = RunStatus.RUNNING
            self.store.update_run(run.id, status=RunStatus.RUNNING.value, timings=timings)
            self._emit(run, "status", {"status": RunStatus.RUNNING.value})
            if session.closed:
                error = RunError(ErrorKind.CANCELLED, "session deleted")
                return self._finish(run, RunStatus.CANCELLED, error, timings)
            state_before = session.backend.state()
            self.store.update_run(run.id, state_before=jsonable(state_before))
            recorder = None
            if self.settings.media:
                recorder = Recorder(self.settings.media_dir, run.id, self.settings.max_frames)
                self._record_frame(run, recorder)
            else:
                self._live_frame(session)
            status, error, engine_s = self._drive(run, recorder)
            with run._cancel_lock:
                run.engine_done = True
                if run.cancel.is_set():
                    status = RunStatus.CANCELLED
                    error = RunError(ErrorKind.CANCELLED, "cancelled by request (e-stop)")
                    session.backend.resume()
            state_after = jsonable(session.backend.state())
            session.last_state = state_after
            media = {}
            if recorder is not None:
                self._record_frame(run, recorder, final=True)
                t0 = time.perf_counter()
                media = recorder.finish()
                run.media_s += time.perf_counter() - t0
            ended = time.time()
            timings.update(
                ended_at=ended,
                engine_s=round(engine_s, 4),
                media_s=round(run.media_s, 4),
                total_s=round(ended - started, 4),
            )
            self.store.update_run(run.id, state_after=state_after, media=media)
            if self.after_run is not None:
                try:
                    self.after_run(session)
                except Exception:  # the run itself is done and traced either way
                    log.exception("saving session %s after run %s failed", session.id, run.id)
            self._finish(run, status, error, timings)

    def _drive(self, run: Run, recorder: Recorder | None) -> tuple[RunStatus, RunError | None, float]:
        """Run the engine; returns (status, error, seconds the engine took)."""
        session = run.session
        videos: list[dict] = []

        def on_event(kind: str, data: dict) -> None:
            if kind == "candidate" and "frames" in data:  # a rehearsal on a twin, filmed
                data = self._rehearsal_video(run, data, videos)
            if kind == "llm_call":
                self.metrics.llm_call(data.get("prompt_tokens", 0), data.get("completion_tokens", 0))
            self._emit(run, kind, data)
            if kind == "primitive_call" and data.get("name") in CONTROL_PRIMITIVES:
                try:
                    session.last_state = jsonable(session.backend.state())
                    if recorder is not None:
                        self._record_frame(run, recorder)
                    else:
                        self._live_frame(session)
                except Exception:
                    log.exception("recording a frame failed")

        session.attach(on_event)
        engine = session.engine or self.engine
        gate = self._gate(run) if self.settings.approval_required(session.robot) else None
        t0 = time.time()
        try:
            session.backend.begin_run()  # a fresh motion budget and run clock for its safety envelope
            if run.kind == "command":
                outcome = engine.run_command(
                    run.text, session.api, session.conversation, on_event, run.cancel, approval=gate
                )
            else:
                outcome = engine.run_program(run.text, session.api, on_event, run.cancel, approval=gate)
        except Exception as exc:  # noqa: BLE001 - any engine failure fails only this run
            return RunStatus.FAILED, self._exception_error(exc), time.time() - t0
        finally:
            session.attach(None)
        return outcome.status, outcome.error, time.time() - t0

    def _rehearsal_video(self, run: Run, data: dict, videos: list[dict]) -> dict:
        """The candidate event with its rehearsal's frames swapped for the video's URLs."""
        data = dict(data)
        frames = data.pop("frames")
        if self.settings.media and frames:
            t0 = time.perf_counter()
            data["video"] = write_rehearsal(self.settings.media_dir, run.id, len(videos), frames)
            run.media_s += time.perf_counter() - t0
            videos.append(data["video"])
        return data

    # ---- approval ---------------------------------------------------------------------------
    def _gate(self, run: Run) -> OperatorGate:
        return OperatorGate(
            self.settings.approval_timeout_s,
            lambda pending: self._park(run, pending),
            lambda pending: self._unpark(run, pending),
        )

    def _park(self, run: Run, pending: Pending) -> None:
        """The run awaits approval: say so, and lend its slot (and a worker thread) to others."""
        run.pending = pending
        if run.cancel.is_set():  # cancelled just before: cancel() may not have seen `pending`
            pending.cancel()
        self._set_status(run, RunStatus.AWAITING_APPROVAL)
        with self._cond:
            if run.holds_slot:
                run.holds_slot = False
                self._running -= 1
            self._workers -= 1
            if not self._stopping:
                self._spawn_worker()
            self._cond.notify_all()

    def _unpark(self, run: Run, pending: Pending) -> None:
        """Decided: an approved run takes a slot again (before queued runs) and goes on running; a
        rejected one only finishes, without a slot."""
        run.pending = None
        approved = pending.decision is not None and pending.decision.approved
        limit = self.settings.max_concurrent_runs
        with self._cond:
            slots_taken = self._running >= limit
        if approved and slots_taken:  # approved, and in line for a slot: no longer awaiting anyone
            self._set_status(run, RunStatus.QUEUED)
        with self._cond:
            self._workers += 1  # this thread goes back to the pool after the run; a stand-in retires
            if approved:
                self._resuming += 1
                while self._running >= limit and not (self._stopping or run.cancel.is_set()):
                    self._cond.wait()
                self._resuming -= 1
                if self._running < limit:  # else cancelled or stopping: it only finishes, without a slot
                    self._running += 1
                    run.holds_slot = True
            self._cond.notify_all()
        if approved:
            self._set_status(run, RunStatus.RUNNING)

    def _set_status(self, run: Run, status: RunStatus) -> None:
        run.status = status
        self.store.update_run(run.id, status=status.value)
        self._emit(run, "status", {"status": status.value})

    @staticmethod
    def _exception_error(exc: Exception) -> RunError:
        from capstan.llm.base import LLMError

        if isinstance(exc, LLMError):
            return RunError(ErrorKind.LLM, f"the language model failed ({type(exc).__name__}): {exc}")
        if isinstance(exc, PrimitiveError):  # the robot, outside a program (unreachable at the start)
            return RunError(ErrorKind.PRIMITIVE, f"{type(exc).__name__}: {exc}")
        log.exception("engine raised", exc_info=exc)
        return RunError(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")

    def _live_frame(self, session: Session, min_interval_s: float = 0.25) -> None:
        """Without media recording, still publish the current view for GET .../frame.png during the run
        (at most every `min_interval_s`, so tight loops of small motions are not slowed by rendering)."""
        now = time.monotonic()
        if session.last_frame is not None and now - session.last_frame_at < min_interval_s:
            return
        session.last_frame = png_bytes(session.backend.render(self.settings.video_view, 320, 240).rgb)
        session.last_frame_at = now

    def _record_frame(self, run: Run, recorder: Recorder, final: bool = False) -> None:
        """`_move_frames`, its time counted in the run's media time."""
        t0 = time.perf_counter()
        try:
            self._move_frames(run, recorder, final)
        finally:
            run.media_s += time.perf_counter() - t0

    def _move_frames(self, run: Run, recorder: Recorder, final: bool) -> None:
        """Move the frames captured since the last call into the run's media; emit one "frame" event.

        Backends that support recording (sim.World) capture frames during motion; recording restarts
        after each control primitive until `max_frames` is reached. Other backends get one rendered
        frame per call."""
        backend = run.session.backend
        can_record = backend.supports_recording
        if can_record:
            # a segment's first frame repeats the end of the previous one: not drawn again
            frames = backend.stop_recording(skip_first=recorder.count > 0) if recorder.count or final else []
        else:
            frames = [backend.render(self.settings.video_view, 320, 240).rgb]
        saved = None
        for rgb in frames:
            saved = recorder.add(rgb) or saved
        if can_record and not final and not recorder.full:
            left = recorder.max_frames - recorder.count + 1  # +1: a segment's first frame is dropped
            backend.start_recording(
                fps=FRAME_FPS, view=self.settings.video_view, width=320, height=240, max_frames=left
            )
            if recorder.count == 0:
                saved = recorder.add(backend.stop_recording()[0])
                backend.start_recording(
                    fps=FRAME_FPS, view=self.settings.video_view, width=320, height=240, max_frames=left
                )
        if saved is not None:
            index, png = saved
            run.session.last_frame = png
            self._emit(run, "frame", {"index": index, "url": f"/v1/runs/{run.id}/frames/{index}.png"})

    def _finish(self, run: Run, status: RunStatus, error: RunError | None, timings: dict) -> None:
        if not timings:
            timings = {"queued_at": run.created_at, "ended_at": time.time()}
        run.status, run.error = status, error
        stored = error.to_dict() if error is not None else None
        dropped = max(0, run.call_events - MAX_CALL_EVENTS)
        extra = {"events_dropped": dropped} if dropped else {}
        try:
            self.store.update_run(run.id, status=status.value, error=stored, timings=timings, **extra)
        except Exception:  # a full disk or a lost database: the run still ends, its waiters are told
            log.exception("run %s: its final status (%s) could not be stored", run.id, status.value)
        self.metrics.run_finished(
            status.value,
            (timings.get("ended_at") or time.time()) - (timings.get("started_at") or run.created_at),
        )
        self._emit(run, "end", {"status": status.value, "error": stored})
        with self._cond:
            if self._active.pop(run.id, None) is not None:
                run.session.active_runs -= 1
        run.done.set()
