"""Session registry: each session owns a world (robot backend), its policy API and its conversation.

Sessions outlive the process: the registry saves each one's document (robot, scene, where the
objects are, the conversation) to the store when it is created, after every run and on reset,
and `revive()` rebuilds them at start-up, with their skills (helpers written for the session that
then ran without error, or imported). What does not survive a restart: a block held in the
gripper (it drops) and undo snapshots of earlier turns.
Because sessions outlive restarts, idle ones expire: a session nobody used for `idle_s` seconds
(CAPSTAN_SESSION_IDLE_S) is closed the next time a session is created, and not revived.

A session's backend is touched by one thread at a time: the run executing on it holds
`session.lock`; HTTP reads of state or frames take the same lock when idle and otherwise use the
state and frame the running run last published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from capstan.primitives.scene_state import SceneState
from capstan.service.operators import RobotAction
from capstan.service.robots import make_backend

BackendFactory = Callable[[str, dict], object]  # (robot, scene) -> RobotBackend


class SessionNotFound(KeyError):
    def __str__(self) -> str:
        return f"no session {self.args[0]!r} (it may have been deleted; create one with POST /v1/sessions)"


class SessionLimitError(RuntimeError):
    pass


class SessionBusyError(RuntimeError):
    pass


class RobotActionUnsupported(RuntimeError):
    """The session's robot has no such operator action (no watchdog, no error recovery)."""


# what an operator may ask of a robot between runs: action -> (the backend's flag, its method)
OPERATOR_ACTIONS: dict[RobotAction, tuple[str, str]] = {
    "clear-watchdog": ("supports_watchdog", "clear_watchdog"),
    "recover": ("supports_recovery", "recover"),
}


def png_bytes(rgb) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


log = logging.getLogger("capstan.service")


class SceneNotDeclarableError(Exception):
    """Objects were declared for a robot that perceives its own (the sim, or an agent with a camera)."""


class Session:
    def __init__(
        self,
        robot: str,
        scene: dict,
        perception: str = "truth",
        engine=None,
        backend_factory: BackendFactory = make_backend,
    ):
        self.backend_factory = backend_factory
        self.engine = engine  # lmp.Engine serving this session (None: the run manager's shared one)
        self.id = uuid.uuid4().hex[:12]
        self.robot = robot
        self.scene = dict(scene)
        self.perception = perception
        self.created_at = time.time()
        self.last_used = self.created_at  # wall clock of the last request or run that touched it
        self.lock = threading.Lock()  # held while a run (or a reset / render) uses the backend
        self.busy = False  # a run is executing
        self.active_runs = 0  # queued, running or awaiting approval (kept by the RunManager)
        self.closed = False
        self._sink: Callable[[str, dict], None] | None = None
        self.last_frame: bytes | None = None  # PNG published by the running run
        self.last_frame_at = 0.0  # time.monotonic() of last_frame
        self.last_state: SceneState | None = None
        # saved skills a restart could not take back (say, a name a newer version refuses): kept in
        # the saved document as they were, with why, so a later save does not erase them
        self.unreadable_skills: list[dict] = []
        self._build()

    def _build(self, backend=None) -> None:
        from capstan.lmp import Conversation
        from capstan.service.assembly import build_policy_api

        self.backend = backend if backend is not None else self.backend_factory(self.robot, self.scene)
        self.api = build_policy_api(self.backend, self.perception, self._on_event)
        self.conversation = Conversation()
        self.last_state = self.backend.state()
        self.last_frame = None

    def _on_event(self, kind: str, data: dict) -> None:
        sink = self._sink
        if sink is not None:
            sink(kind, data)

    def attach(self, sink: Callable[[str, dict], None] | None) -> None:
        """Route policy-API events to the running run (None detaches)."""
        self._sink = sink

    def to_doc(self) -> dict:
        """What revive() needs, as plain JSON."""
        turns = [
            {
                "command": t.command,
                "code": t.code,
                "status": t.status,
                "said": list(t.said),
                "undone": t.undone,
                "is_undo": t.is_undo,
            }
            for t in self.conversation.turns
        ]
        objects = (self.last_state or {}).get("objects", {})
        poses = {n: {"position": o["position"], "orientation": o["orientation"]} for n, o in objects.items()}
        skills = [dataclasses.asdict(s) for s in self.engine.skills.all()] if self.engine is not None else []
        return {
            "id": self.id,
            "robot": self.robot,
            "scene": self.scene,
            "created_at": self.created_at,
            "last_used": self.last_used,
            "poses": poses,
            "turns": turns,
            "skills": skills,
            "skills_unreadable": self.unreadable_skills,
        }

    def restore(self, doc: dict) -> None:
        """Take over a saved session's identity, object poses and conversation (start-up only)."""
        from capstan.lmp.conversation import Turn
        from capstan.primitives.outcome import RunStatus

        self.id = str(doc["id"])
        self.created_at = float(doc.get("created_at", self.created_at))
        self.last_used = float(doc.get("last_used", self.created_at))
        if doc.get("poses") and self.backend.supports_placing:
            self.backend.place_objects(doc["poses"])
            self.last_state = self.backend.state()
        if self.engine is not None:
            from capstan.lmp.skills import SkillError

            self.unreadable_skills = list(doc.get("skills_unreadable", []))
            for item in doc.get("skills", []):
                try:
                    self.engine.skills.add(item["name"], item["code"]).uses = int(item.get("uses", 0))
                except (SkillError, KeyError, TypeError, ValueError) as exc:  # it does not cost the session
                    name = item.get("name") if isinstance(item, dict) else None
                    log.warning(
                        "session %s: saved skill %r not restored (%s: %s); kept aside in its saved document",
                        self.id,
                        name,
                        type(exc).__name__,
                        exc,
                    )
                    self.unreadable_skills.append({"skill": item, "error": f"{type(exc).__name__}: {exc}"})
        for t in doc.get("turns", []):
            self.conversation.add(
                Turn(
                    command=t["command"],
                    code=t["code"],
                    status=RunStatus(t["status"]),
                    said=list(t.get("said", [])),
                    undone=bool(t.get("undone")),
                    is_undo=bool(t.get("is_undo")),
                )
            )

    def state(self) -> SceneState | None:
        if self.lock.acquire(blocking=False):
            try:
                self.last_state = self.backend.state()
            finally:
                self.lock.release()
        return self.last_state

    def frame_png(self, view: str = "top") -> bytes:
        """A fresh render when idle; while a run executes, the frame it last recorded."""
        if self.lock.acquire(timeout=0.05):
            try:
                return png_bytes(self.backend.render(view, 480, 360).rgb)
            finally:
                self.lock.release()
        if self.last_frame is not None:
            return self.last_frame
        if self.lock.acquire(timeout=2.0):
            try:
                return png_bytes(self.backend.render(view, 480, 360).rgb)
            finally:
                self.lock.release()
        raise SessionBusyError(
            f"session {self.id} is running a program and has no frame yet; retry in a second"
        )

    @contextlib.contextmanager
    def _between_runs(self, then: str) -> Iterator[None]:
        """The session's lock for a change between runs; a session deleted meanwhile is not found
        (a reset would build a world nothing closes, and close its old one twice)."""
        if not self.lock.acquire(timeout=1.0):
            raise SessionBusyError(f"session {self.id} is running a program; cancel it or wait{then}")
        try:
            if self.closed:
                raise SessionNotFound(self.id)
            yield
        finally:
            self.lock.release()

    def reset(self, scene: dict | None = None, seed: int | None = None) -> None:
        with self._between_runs(", then reset"):
            new_scene = dict(scene if scene is not None else self.scene)
            if seed is not None:
                new_scene["seed"] = seed
            # a bad scene raises here, keeping the old world
            backend = self.backend_factory(self.robot, new_scene)
            self.backend.close()
            self.scene = new_scene
            self._build(backend)

    def declare(self, objects: dict) -> None:
        """Tell a robot without perception what is on its table (RobotBackend.declare); the
        conversation is cleared, since what it said was about the old table."""
        if not self.backend.supports_declaring:
            raise SceneNotDeclarableError(
                f"robot {self.robot!r} knows where its objects are: it takes no declared objects"
            )
        with self._between_runs(", then declare"):
            self.backend.declare(objects)  # refuses a bad list whole (InvalidArgumentError)
            self.conversation = type(self.conversation)()
            self.last_state = self.backend.state()

    def changing_skills(self) -> contextlib.AbstractContextManager[None]:
        """Hold the session for an import or deletion of skills: not under a run, which reads them
        into its program and adds the ones it wrote when it ends."""
        return self._between_runs(", then change its skills")

    def operate(self, action: RobotAction) -> None:
        """An operator's action on the robot between runs (OPERATOR_ACTIONS): lift a watchdog stop once
        the link was checked, or clear the robot's error state after a reflex. Neither moves the arm."""
        flag, method = OPERATOR_ACTIONS[action]
        if not getattr(self.backend, flag):
            raise RobotActionUnsupported(
                f"robot {self.robot!r} has no {action} (its backend does not declare {flag})"
            )
        with self._between_runs(" first"):
            getattr(self.backend, method)()

    def close(self) -> None:
        self.closed = True
        with self.lock:
            self.backend.close()


class SessionRegistry:
    def __init__(
        self,
        max_sessions: int,
        perception: str = "truth",
        engine_factory=None,
        backend_factory: BackendFactory = make_backend,
        store=None,
        idle_s: float = 0.0,
        on_created: Callable[[Session], None] | None = None,
    ):
        self.idle_s = idle_s  # 0: sessions never expire
        self.on_created = on_created  # told of each new session (the service reads its prompt ahead)
        self.store = store  # app.store.TraceStore keeping live sessions across restarts (None: memory only)
        self.backend_factory = backend_factory
        self.engine_factory = engine_factory  # (robot name) -> the session's engine
        self.max_sessions = max_sessions
        self.perception = perception
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, robot: str, scene: dict) -> Session:
        self.expire_idle()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise SessionLimitError(
                    f"too many sessions ({self.max_sessions}, CAPSTAN_MAX_SESSIONS): delete one with "
                    "DELETE /v1/sessions/{id} and retry"
                )
        session = self._new_session(robot, scene)  # slow part outside the lock
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                session.close()
                raise SessionLimitError(f"too many sessions ({self.max_sessions}, CAPSTAN_MAX_SESSIONS)")
            self._sessions[session.id] = session
        self.save(session)
        if self.on_created is not None:
            self.on_created(session)
        return session

    def _new_session(self, robot: str, scene: dict) -> Session:
        engine = self.engine_factory(robot) if self.engine_factory else None
        return Session(robot, scene, self.perception, engine, self.backend_factory)

    def _stale(self, last_used: float, now: float) -> bool:
        return bool(self.idle_s) and now - last_used > self.idle_s

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Close and forget sessions idle for longer than idle_s (never one with a run queued or going)."""
        now = time.time() if now is None else now
        stale = [
            s
            for s in self.all()
            if self._stale(s.last_used, now) and not (s.busy or s.active_runs or s.lock.locked())
        ]
        gone = []
        for session in stale:
            try:
                self.remove(session.id)
            except SessionNotFound:
                continue
            session.close()
            gone.append(session.id)
        return gone

    def save(self, session: Session) -> None:
        session.last_used = time.time()
        if self.store is not None and not session.closed:
            self.store.save_session(session.id, session.to_doc())

    def revive(self, log=None) -> list[str]:
        """Rebuild the saved sessions (at start-up); returns the ids brought back. A session whose
        robot is gone or whose scene no longer builds is skipped and stays saved for next time."""
        if self.store is None:
            return []
        revived = []
        now = time.time()
        docs = []
        for doc in self.store.live_sessions():
            if self._stale(float(doc.get("last_used", 0.0)), now):
                self.store.delete_session(str(doc.get("id")))
            else:
                docs.append(doc)
        for doc in docs[: self.max_sessions]:
            session = None
            try:
                session = self._new_session(doc["robot"], doc.get("scene") or {})
                session.restore(doc)
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the service starting
                if session is not None:
                    session.close()
                if log is not None:
                    log(f"session {doc.get('id')!r} not restored: {type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self._sessions[session.id] = session
            revived.append(session.id)
        return revived

    def get(self, session_id: str) -> Session:
        try:
            session = self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None
        session.last_used = time.time()
        return session

    def remove(self, session_id: str) -> Session:
        with self._lock:
            try:
                session = self._sessions.pop(session_id)
            except KeyError:
                raise SessionNotFound(session_id) from None
        session.closed = True  # before the delete, so a run ending now cannot save it back
        if self.store is not None:
            self.store.delete_session(session_id)
        return session

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        for s in self.all():
            self._sessions.pop(s.id, None)
            s.close()
