"""The robot agent: serves one RobotBackend over the robot agent protocol (docs/CONTRACTS.md).

Run it next to a robot, wrapping that robot's RobotBackend (`make_agent_app(backend)`), and
point Capstan at it with CAPSTAN_ROBOTS=name=http://host:port; Capstan's RemoteRobot then
drives it like the built-in sim. `capstan robot-agent` serves a PyBullet world this way, which
is both the reference implementation and a stand-in robot on another machine.

Every agent enforces a safety envelope on its own side (primitives.envelope: `envelope`, else the
conservative `Envelope.default_for` its workspace), so a motion that breaks it never reaches the
robot even when the service driving it is misconfigured; `POST /v1/robot/begin_run` starts its
per-run budgets again and `POST /v1/robot/check_path` asks it about a path without moving.

One verb runs at a time (a robot does one thing at once, and PyBullet is not thread-safe), except
`stop`, which only raises the backend's stop flag and so must get through while a motion is in
flight. Primitive errors travel back by class name with HTTP 409; bad requests get 422 (FastAPI's shape).
Motions run only while the service's heartbeat is fresh, and a lapsed heartbeat stops the robot
(agent_watchdog).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from capstan.primitives.backend import RobotBackend
from capstan.primitives.envelope import Envelope, EnvelopedBackend
from capstan.primitives.errors import InvalidArgumentError, PrimitiveError, RobotStoppedError
from capstan.primitives.remote import PROTOCOL_VERSION, array_spec
from capstan.primitives.scene_state import SceneState
from capstan.service.agent_watchdog import DEFAULT_HEARTBEAT_MS, HeartbeatWatchdog
from capstan.service.body_limit import BodyLimit
from capstan.service.responses import validation_failed

MAX_BODY_BYTES = 1_000_000  # a declared scene or a path to check is far smaller
_LIMIT = 10.0  # metres: nothing on a tabletop is further away; refuses absurd numbers early
# a finite coordinate on a tabletop: pydantic refuses others with the usual 422 (NaN and inf too)
_Coordinate = Annotated[float, Field(gt=-_LIMIT, lt=_LIMIT, allow_inf_nan=False)]


class _Xyz(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "yes" is not true, nor true a number
    xyz: list[_Coordinate] = Field(min_length=3, max_length=3)
    yaw: float = Field(default=0.0, ge=-10.0, le=10.0)


class _Move(_Xyz):
    speed: float = Field(default=1.0, gt=0.0, le=2.0)


class _Gripper(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    closed: bool


class _Wait(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    seconds: float = Field(ge=0.0, le=60.0)


class _Path(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    points: list[Annotated[list[_Coordinate], Field(min_length=3, max_length=3)]] = Field(
        min_length=1, max_length=32
    )


class _Scene(BaseModel):
    """A declared scene; DeclaredScene.declare checks the objects and says what is wrong."""

    model_config = ConfigDict(extra="forbid", strict=True)
    objects: dict[str, Any] | list[Any]


class _Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    client: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    end: bool = False  # the client closes: it stops beating on purpose


class _Agent:
    """The backend an agent serves, its name, its heartbeat watchdog, and the lock that lets one
    verb run at a time."""

    def __init__(self, backend: EnvelopedBackend, robot: str, watchdog: HeartbeatWatchdog):
        self.backend = backend
        self.robot = robot
        self.watchdog = watchdog
        self._lock = threading.Lock()
        # stops run on a thread of their own: the threads the other verbs share may all be waiting
        # for a motion to end, and a stop must not wait behind them
        self.stopper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capstan-agent-stop")

    def serial(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            return fn()

    def motion(self, fn: Callable[[], Any]) -> Any:
        """A verb that moves the robot: one at a time, and only while someone can stop it."""
        with self._lock:
            self.watchdog.check_motion()  # after the wait for the lock: the heartbeat is fresh now
            return fn()


async def _agent(request: Request) -> _Agent:  # async: resolved without a pool thread
    return request.app.state.agent


AgentDep = Annotated[_Agent, Depends(_agent)]
router = APIRouter(prefix="/v1/robot")


def make_agent_app(
    backend: RobotBackend,
    robot: str = "unknown",
    token: str | None = None,
    envelope: Envelope | None = None,
    *,
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
    unsafe_no_heartbeat: bool = False,
) -> FastAPI:
    """The agent app for `backend`, served behind `envelope` (default: Envelope.default_for its
    workspace; a backend already wrapped in an EnvelopedBackend keeps its own unless `envelope` is
    given). Its heartbeat watchdog (agent_watchdog) runs during the app's lifespan; `heartbeat_ms=0`
    turns it off only with `unsafe_no_heartbeat=True` (ValueError otherwise)."""
    watchdog = HeartbeatWatchdog(backend.stop, heartbeat_ms, unsafe_no_heartbeat=unsafe_no_heartbeat)
    app = FastAPI(
        title="Capstan robot agent",
        version=str(PROTOCOL_VERSION),
        description="One robot's verbs over HTTP, for Capstan's RemoteRobot.",
        lifespan=_watching,
    )
    if envelope is not None or not isinstance(backend, EnvelopedBackend):
        backend = EnvelopedBackend(backend, envelope or Envelope.default_for(backend.workspace()))
    app.state.agent = _Agent(backend, robot, watchdog)

    @app.middleware("http")
    async def check_caller(request: Request, call_next):
        # Browsers add Origin to cross-site requests, and a body-less POST needs no preflight: any web
        # page could lift an operator's e-stop on an agent without a token. The service sends none.
        if "origin" in request.headers:
            return JSONResponse({"detail": "requests from web pages are refused"}, status_code=403)
        given = request.headers.get("authorization", "").encode("latin-1")
        if token and not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return await call_next(request)

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)

    app.add_exception_handler(PrimitiveError, _primitive_error)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def _watching(app: FastAPI):
    watchdog: HeartbeatWatchdog = app.state.agent.watchdog
    watchdog.start()
    try:
        yield
    finally:
        watchdog.close()
        app.state.agent.stopper.shutdown(wait=False)


async def _primitive_error(_request: Request, exc: Exception) -> JSONResponse:
    return _error(type(exc).__name__, str(exc), 409)


def _error(kind: str, message: str, status: int) -> JSONResponse:
    """The protocol's error answer, which RemoteRobot raises again as the same class."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


@router.get("")
def info(agent: AgentDep) -> dict:
    ws = agent.backend.workspace()
    return {
        "protocol": PROTOCOL_VERSION,
        "robot": agent.robot,
        "workspace": {"x": list(ws.x), "y": list(ws.y), "table_z": ws.table_z},
        "envelope": agent.backend.envelope.to_dict(),
        "declared_scene": bool(agent.backend.supports_declaring),
        "recovery": bool(agent.backend.supports_recovery),
        "heartbeat_ms": agent.watchdog.limit_ms,
    }


@router.get("/state")
def state(agent: AgentDep) -> SceneState:
    return agent.serial(agent.backend.state)


@router.get("/render")
def render(
    agent: AgentDep,
    view: str = Query("top", max_length=32),
    width: int = Query(320, ge=16, le=1920),
    height: int = Query(240, ge=16, le=1080),
) -> dict:
    img = agent.serial(lambda: agent.backend.render(view, width, height))
    return {
        "rgb": array_spec(img.rgb, "uint8"),
        "depth": array_spec(img.depth, "float32"),
        "segmentation": array_spec(img.segmentation, "int32") if img.segmentation is not None else None,
        "intrinsics": img.intrinsics.tolist(),
        "extrinsics": img.extrinsics.tolist(),
        "id_to_name": {str(k): v for k, v in img.id_to_name.items()},
    }


@router.get("/ee")
def ee(agent: AgentDep) -> dict:
    return {"xyz": [float(v) for v in agent.serial(agent.backend.ee_position)]}


@router.post("/move_ee")
def move_ee(agent: AgentDep, body: _Move) -> dict:
    agent.motion(lambda: agent.backend.move_ee(body.xyz, body.yaw, body.speed))
    return {}


@router.post("/can_reach")
def can_reach(agent: AgentDep, body: _Xyz) -> dict:
    return {"reachable": bool(agent.serial(lambda: agent.backend.can_reach(body.xyz, body.yaw)))}


@router.post("/gripper")
def gripper(agent: AgentDep, body: _Gripper) -> dict:
    return {"holding": bool(agent.motion(lambda: agent.backend.set_gripper(body.closed)))}


@router.get("/gripper")
def gripper_state(agent: AgentDep) -> dict:
    return agent.serial(agent.backend.gripper_state)


@router.post("/wait")
def wait(agent: AgentDep, body: _Wait) -> dict:
    agent.motion(lambda: agent.backend.wait(body.seconds))
    return {}


@router.post("/begin_run")
def begin_run(agent: AgentDep) -> dict:
    agent.serial(agent.backend.begin_run)
    return {}


@router.post("/check_path")
def check_path(agent: AgentDep, body: _Path) -> dict:
    agent.serial(lambda: agent.backend.check_path(body.points))
    return {}


@router.post("/stop")
async def stop(agent: AgentDep) -> dict:
    # not serial: it must reach a motion in flight
    await asyncio.get_running_loop().run_in_executor(agent.stopper, agent.backend.stop)
    return {}


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    watchdog: bool = False  # the operator also clears a watchdog stop: the service link was checked


@router.post("/resume")
def resume(agent: AgentDep, body: _Resume | None = None) -> dict:
    """Lift an e-stop. A stop the watchdog made (the service went silent) is lifted only by a resume
    that says so, `{"watchdog": true}`: the service's own resume after a cancelled run must not
    clear a link fault nobody has looked at."""
    if agent.watchdog.tripped and not (body and body.watchdog):
        raise RobotStoppedError(
            f"the heartbeat watchdog stopped the robot ({agent.watchdog.report()['reason']}); after "
            'checking the link to the service, resume with {"watchdog": true}'
        )
    # a trip between these two lines leaves the watchdog tripped, so motions stay refused
    agent.watchdog.reset()
    agent.serial(agent.backend.resume)
    return {}


@router.put("/scene")
def declare_scene(agent: AgentDep, body: _Scene) -> JSONResponse:
    """Replace the declared scene of a robot without perception of its own."""
    if not agent.backend.supports_declaring:
        return _unsupported(agent, "takes no declared scene: it knows where its objects are")
    try:
        agent.serial(lambda: agent.backend.declare(body.objects))
    except InvalidArgumentError as exc:
        return _error(type(exc).__name__, str(exc), 422)
    return JSONResponse({})


@router.post("/recover")
def recover(agent: AgentDep) -> JSONResponse:
    """Clear the robot's error state (after a reflex); only on the operator's request."""
    if not agent.backend.supports_recovery:
        return _unsupported(agent, "has no error state to recover from")
    agent.serial(agent.backend.recover)
    return JSONResponse({})


def _unsupported(agent: _Agent, why: str) -> JSONResponse:
    message = f"robot {agent.robot!r} {why} (see GET /v1/robot)"
    return _error("NotSupported", message, 409)


# async, and with no sync dependency: served on the event loop, never queued behind the verbs
@router.post("/heartbeat")
async def heartbeat(request: Request, body: _Heartbeat) -> dict:
    watchdog: HeartbeatWatchdog = request.app.state.agent.watchdog
    if body.end:
        watchdog.end(body.client)
    else:
        watchdog.beat(body.client)
    return {"heartbeat_ms": watchdog.limit_ms, "tripped": watchdog.tripped}


@router.get("/watchdog")
async def watchdog_report(request: Request) -> dict:
    return request.app.state.agent.watchdog.report()


def sim_agent_app(
    scene: dict | None = None,
    token: str | None = None,
    envelope: Envelope | None = None,
    *,
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
    unsafe_no_heartbeat: bool = False,
) -> FastAPI:
    """The reference agent: a headless PyBullet world behind the protocol (and an envelope)."""
    from capstan import sim

    world = sim.World(scene or {"blocks": 3, "bowls": 3, "seed": 0})
    robot = f"sim:{world.state().get('robot', 'panda')}"
    try:
        app = make_agent_app(
            world,
            robot,
            token,
            envelope,
            heartbeat_ms=heartbeat_ms,
            unsafe_no_heartbeat=unsafe_no_heartbeat,
        )
    except BaseException:
        world.close()
        raise
    app.state.world = world  # the caller closes it when the server stops
    return app
