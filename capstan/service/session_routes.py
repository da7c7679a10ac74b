"""Routes for sessions: create, list, get, delete, the scene's state and frame, reset, the
objects declared on a real robot's table, and an operator's actions on its robot.

A session owns a world (the sim built from its scene, or a remote robot) and a conversation;
runs in it are started by run_routes. Calls that read the robot answer 503 when it is unreachable.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, HTTPException, Query, Response

from capstan.primitives.errors import InvalidArgumentError, PrimitiveError, RobotUnavailableError
from capstan.primitives.scene_state import SceneState
from capstan.service import schemas
from capstan.service.config import Settings
from capstan.service.deps import OperatorToken, ServiceDep, SessionDep, signed_by
from capstan.service.operators import RobotAction
from capstan.service.responses import (
    BAD_BODY,
    BUSY,
    NOT_FOUND,
    OPERATOR_ONLY,
    RETRY_AFTER_S,
    TOO_MANY,
    UNAVAILABLE,
    error_response,
    unprocessable,
)
from capstan.service.robots import UnknownRobotError, scene_error_type, scene_refused, takes_scene
from capstan.service.sessions import (
    RobotActionUnsupported,
    SceneNotDeclarableError,
    Session,
    SessionBusyError,
    SessionLimitError,
)

router = APIRouter(tags=["sessions"])
log = logging.getLogger(__name__)


def session_out(s: Session) -> schemas.SessionOut:
    return schemas.SessionOut(
        id=s.id, robot=s.robot, scene=s.scene, state=s.state(), created_at=s.created_at, busy=s.busy
    )


def check_scene(scene: schemas.SceneSpec, settings: Settings) -> None:
    if scene.object_count() > settings.max_scene_objects:
        raise unprocessable(
            f"scene has {scene.object_count()} objects; at most {settings.max_scene_objects} "
            "are allowed (CAPSTAN_MAX_SCENE_OBJECTS)",
            "scene",
        )


@router.post(
    "/sessions",
    status_code=201,
    response_model=schemas.SessionOut,
    responses={**BAD_BODY, **TOO_MANY, **UNAVAILABLE},
)
def create_session(service: ServiceDep, body: schemas.CreateSession | None = None) -> schemas.SessionOut:
    """Create a session with its own world; without a body: the sim robot, 3 blocks and 3 bowls."""
    body = body or schemas.CreateSession()
    check_scene(body.scene, service.settings)
    scene = body.scene.spec()
    if body.robot not in service.robots:
        raise unprocessable(str(UnknownRobotError(body.robot, service.robots)), "robot")
    if not takes_scene(body.robot):
        if "scene" in body.model_fields_set:
            raise unprocessable(scene_refused(body.robot, "omit 'scene'"), "scene")
        scene = {}
    elif body.objects is not None:
        raise unprocessable(
            "the sim builds its table from 'scene'; 'objects' are for a real robot", "objects"
        )
    try:
        session = service.sessions.create(body.robot, scene)
    except SessionLimitError as exc:
        service.metrics.rejected_request("sessions_full")
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["sessions_full"])}
        ) from None
    except scene_error_type() as exc:
        raise unprocessable(str(exc), "scene") from None
    if body.objects is not None:
        try:
            _declare(session, body.objects)
        except Exception:  # a session whose table could not be declared is not kept (nor its robot link)
            service.sessions.remove(session.id)
            session.close()
            raise
    return session_out(session)


@router.post(
    "/sessions/{session_id}/robot/{action}",
    response_model=schemas.RobotActionResult,
    responses={
        **BAD_BODY,
        **OPERATOR_ONLY,
        **NOT_FOUND,
        **error_response(409, "a run is using the robot, the robot has no such action, or it refused"),
        **UNAVAILABLE,
    },
)
def robot_action(
    session: SessionDep,
    service: ServiceDep,
    action: RobotAction,
    body: schemas.OperatorRequest | None = None,
    token: str | None = OperatorToken,
) -> schemas.RobotActionResult:
    """An operator's action on the session's robot while no run uses it; neither moves the arm.
    `clear-watchdog` lifts the stop the robot agent's heartbeat watchdog made (after checking the link
    to the service); `recover` clears the robot's error state after a reflex. Only an operator's own
    token may do either (CAPSTAN_OPERATORS); who did is logged."""
    by, _ = signed_by(service, (body or schemas.OperatorRequest()).by, token, operators_only=True)
    try:
        with service.runs.robot_reserved(session.robot):
            session.operate(action)
    except RobotActionUnsupported as exc:
        raise HTTPException(409, str(exc)) from None
    except RobotUnavailableError:
        raise
    except PrimitiveError as exc:  # the robot refused it (e.g. still in a reflex it cannot clear)
        raise HTTPException(409, f"{type(exc).__name__}: {exc}") from None
    log.warning("robot %r (session %s): %s by operator %s", session.robot, session.id, action, by)
    return schemas.RobotActionResult(
        session_id=session.id, robot=session.robot, action=action, by=by, at=time.time()
    )


def _declare(session: Session, objects: dict[str, schemas.DeclaredObject]) -> None:
    plain = {name: o.model_dump(exclude_none=True) for name, o in objects.items()}
    try:
        session.declare(plain)
    except (SceneNotDeclarableError, InvalidArgumentError) as exc:
        raise unprocessable(str(exc), "objects") from None


@router.get("/sessions", response_model=schemas.SessionList, responses=UNAVAILABLE)
def list_sessions(service: ServiceDep) -> schemas.SessionList:
    return schemas.SessionList(sessions=[session_out(s) for s in service.sessions.all()])


@router.get(
    "/sessions/{session_id}", response_model=schemas.SessionOut, responses={**NOT_FOUND, **UNAVAILABLE}
)
def get_session(session: SessionDep) -> schemas.SessionOut:
    return session_out(session)


@router.delete("/sessions/{session_id}", status_code=204, responses=NOT_FOUND)
def delete_session(session: SessionDep, service: ServiceDep) -> Response:
    """Delete the session; a run it has going is cancelled first."""
    service.runs.cancel_session(session)
    service.sessions.remove(session.id)  # SessionNotFound (404) when a concurrent delete got there first
    session.close()
    return Response(status_code=204)


@router.get("/sessions/{session_id}/state", responses={**NOT_FOUND, **UNAVAILABLE})
def get_state(session: SessionDep) -> SceneState:
    """The scene state (docs/CONTRACTS.md); while a run executes, as of its last motion."""
    return session.state()


@router.get(
    "/sessions/{session_id}/frame.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "a rendered frame"},
        **NOT_FOUND,
        **UNAVAILABLE,
    },
)
def get_frame(session: SessionDep, view: str = Query("top", pattern="^(top|angled)$")) -> Response:
    """A fresh render when the session is idle; while a run executes, the frame it last published."""
    try:
        png = session.frame_png(view)
    except SessionBusyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["busy"])}) from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.put(
    "/sessions/{session_id}/objects",
    response_model=schemas.SessionOut,
    responses={**BAD_BODY, **NOT_FOUND, **BUSY, **UNAVAILABLE},
)
def declare_objects(
    session: SessionDep, service: ServiceDep, body: schemas.DeclareObjects
) -> schemas.SessionOut:
    """Declare what is on a real robot's table (a robot without perception of its own): the list
    replaces the last one, the conversation is cleared. The robot keeps it true for what it does
    itself; anything else that moves the objects needs a new declaration."""
    _declare(session, body.objects)
    service.sessions.save(session)
    return session_out(session)


@router.post(
    "/sessions/{session_id}/reset",
    response_model=schemas.SessionOut,
    responses={**BAD_BODY, **NOT_FOUND, **BUSY, **UNAVAILABLE},
)
def reset_session(
    session: SessionDep, service: ServiceDep, body: schemas.ResetSession | None = None
) -> schemas.SessionOut:
    """Rebuild the world (a new seed or scene, or the same again) and clear the conversation."""
    body = body or schemas.ResetSession()
    if not takes_scene(session.robot) and (body.scene is not None or body.seed is not None):
        raise unprocessable(
            scene_refused(
                session.robot, "reset only reconnects and clears the conversation, so send no scene or seed"
            )
        )
    if body.scene is not None:
        check_scene(body.scene, service.settings)
    try:
        session.reset(body.scene.spec() if body.scene else None, body.seed)
        service.sessions.save(session)
    except scene_error_type() as exc:
        raise unprocessable(str(exc), "scene") from None
    return session_out(session)
