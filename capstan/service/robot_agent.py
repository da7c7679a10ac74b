"""The robot agent: serves one RobotBackend over the robot agent protocol (docs/CONTRACTS.md).

Run it next to a robot, wrapping that robot's RobotBackend (`make_agent_app(backend)`), and
point Capstan at it with CAPSTAN_ROBOTS=name=http://host:port; Capstan's RemoteRobot then
drives it like the built-in sim. `capstan robot-agent` serves a PyBullet world this way, which
is both the reference implementation and a stand-in robot on another machine.

One verb runs at a time (a robot does one thing at once, and PyBullet is not thread-safe), except
`stop`, which only raises the backend's stop flag and so must get through while a motion is in
flight. Primitive errors travel back by class name with HTTP 409; bad requests get 422.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from capstan.primitives.backend import RobotBackend
from capstan.primitives.errors import PrimitiveError
from capstan.primitives.remote import PROTOCOL_VERSION, array_spec

_LIMIT = 10.0  # metres: nothing on a tabletop is further away; refuses absurd numbers early


class _Xyz(BaseModel):
    model_config = ConfigDict(extra="forbid")
    xyz: list[float] = Field(min_length=3, max_length=3)
    yaw: float = Field(default=0.0, ge=-10.0, le=10.0)


class _Move(_Xyz):
    speed: float = Field(default=1.0, gt=0.0, le=2.0)


class _Gripper(BaseModel):
    model_config = ConfigDict(extra="forbid")
    closed: bool


class _Wait(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0.0, le=60.0)


def make_agent_app(backend: RobotBackend, robot: str = "unknown", token: str | None = None) -> FastAPI:
    app = FastAPI(title="Capstan robot agent", version=str(PROTOCOL_VERSION),
                  description="One robot's verbs over HTTP, for Capstan's RemoteRobot.")  # fmt: skip
    lock = threading.Lock()

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return await call_next(request)

    @app.exception_handler(PrimitiveError)
    async def primitive_error(_request: Request, exc: PrimitiveError) -> JSONResponse:
        return JSONResponse({"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=409)

    def serial(fn: Callable[[], Any]) -> Any:
        with lock:
            return fn()

    def checked(xyz: list[float]) -> list[float]:
        if not all(-_LIMIT < v < _LIMIT for v in xyz):  # also refuses NaN
            raise HTTPException(422, f"xyz {xyz} is not a finite position on a tabletop")
        return xyz

    @app.get("/v1/robot")
    def info() -> dict:
        ws = backend.workspace()
        return {
            "protocol": PROTOCOL_VERSION,
            "robot": robot,
            "workspace": {"x": list(ws.x), "y": list(ws.y), "table_z": ws.table_z},
        }

    @app.get("/v1/robot/state")
    def state() -> dict:
        return serial(backend.state)

    @app.get("/v1/robot/render")
    def render(
        view: str = Query("top", max_length=32),
        width: int = Query(320, ge=16, le=1920),
        height: int = Query(240, ge=16, le=1080),
    ) -> dict:
        img = serial(lambda: backend.render(view, width, height))
        return {
            "rgb": array_spec(img.rgb, "uint8"),
            "depth": array_spec(img.depth, "float32"),
            "segmentation": array_spec(img.segmentation, "int32") if img.segmentation is not None else None,
            "intrinsics": img.intrinsics.tolist(),
            "extrinsics": img.extrinsics.tolist(),
            "id_to_name": {str(k): v for k, v in img.id_to_name.items()},
        }

    @app.get("/v1/robot/ee")
    def ee() -> dict:
        return {"xyz": [float(v) for v in serial(backend.ee_position)]}

    @app.post("/v1/robot/move_ee")
    def move_ee(body: _Move) -> dict:
        xyz = checked(body.xyz)
        serial(lambda: backend.move_ee(xyz, body.yaw, body.speed))
        return {}

    @app.post("/v1/robot/can_reach")
    def can_reach(body: _Xyz) -> dict:
        xyz = checked(body.xyz)
        return {"reachable": bool(serial(lambda: backend.can_reach(xyz, body.yaw)))}

    @app.post("/v1/robot/gripper")
    def gripper(body: _Gripper) -> dict:
        return {"holding": bool(serial(lambda: backend.set_gripper(body.closed)))}

    @app.get("/v1/robot/gripper")
    def gripper_state() -> dict:
        return serial(backend.gripper_state)

    @app.post("/v1/robot/wait")
    def wait(body: _Wait) -> dict:
        serial(lambda: backend.wait(body.seconds))
        return {}

    @app.post("/v1/robot/stop")
    def stop() -> dict:
        backend.stop()  # not serial: it must reach a motion in flight
        return {}

    @app.post("/v1/robot/resume")
    def resume() -> dict:
        serial(backend.resume)
        return {}

    return app


def sim_agent_app(scene: dict | None = None, token: str | None = None) -> FastAPI:
    """The reference agent: a headless PyBullet world behind the protocol."""
    from capstan import sim

    world = sim.World(scene or {"blocks": 3, "bowls": 3, "seed": 0})
    app = make_agent_app(world, robot=f"sim:{world.state().get('robot', 'panda')}", token=token)
    app.state.world = world  # the caller closes it when the server stops
    return app
