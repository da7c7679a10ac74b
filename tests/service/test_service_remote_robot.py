"""Remote robots: the service drives a robot agent over HTTP (a real uvicorn agent serving a
PyBullet world on loopback), and a dead or missing agent gives clear errors, never a crash."""

from __future__ import annotations

import contextlib
import math
import threading
import time

import numpy as np
import pytest

from capstan.primitives import PolicyAPI
from capstan.primitives.errors import (
    OutOfWorkspaceError,
    RobotStoppedError,
    RobotUnavailableError,
    UnreachableError,
)
from capstan.primitives.fake import FakeBackend
from capstan.primitives.remote import RemoteRobot
from capstan.service.robot_agent import make_agent_app
from tests.servers import RELAXED_HEARTBEAT_MS
from tests.service.test_service_api import detail

SCENE = {"objects": ["red block", "blue bowl"], "seed": 7}
PUT = "put_first_on_second('red block', 'blue bowl')\nsay('done')"


def in_bowl(state: dict, block: str, bowl: str) -> bool:
    b, w = state["objects"][block]["position"], state["objects"][bowl]["position"]
    return math.dist(b[:2], w[:2]) < 0.05 and b[2] < 0.08


def test_policy_api_over_a_remote_robot_moves_the_agents_world(robot_agent):
    a = robot_agent()
    robot = RemoteRobot(a.url, name="lab")
    try:
        assert robot.workspace() == a.app.state.world.workspace()
        api = PolicyAPI(robot)
        assert sorted(api.get_obj_names()) == ["blue bowl", "red block"]
        api.put_first_on_second("red block", "blue bowl")
        assert in_bowl(a.app.state.world.state(), "red block", "blue bowl")  # the agent's world moved
        assert np.allclose(robot.ee_position(), a.app.state.world.ee_position())
        img = robot.render("top", 64, 48)
        assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.uint8
        assert img.depth.shape == (48, 64) and img.segmentation is not None
        assert set(img.id_to_name.values()) >= {"red block", "blue bowl"}
        with pytest.raises(OutOfWorkspaceError):
            api.move_gripper_to([2.0, 0.5, 0.1])  # refused by the primitive before any request
    finally:
        robot.close()


def test_agent_errors_come_back_as_the_same_primitive_errors(robot_agent):
    from capstan import sim

    world = sim.World(SCENE)

    def refuse(*_a, **_k):
        raise UnreachableError("the arm cannot get there from here")

    world.move_ee = refuse
    a = robot_agent(app=make_agent_app(world, robot="stuck", heartbeat_ms=RELAXED_HEARTBEAT_MS))
    robot = RemoteRobot(a.url)
    try:
        with pytest.raises(UnreachableError, match="cannot get there"):
            robot.move_ee([0.0, 0.5, 0.2])
        assert robot.gripper_state()["open"] is True
    finally:
        robot.close()
        a.stop()
        world.close()


def test_agent_refuses_bad_requests_and_wrong_tokens(robot_agent):
    import httpx

    a = robot_agent(token="s3cret")
    assert httpx.get(a.url + "/v1/robot").status_code == 401
    with pytest.raises(RobotUnavailableError):
        RemoteRobot(a.url, token="wrong")
    robot = RemoteRobot(a.url, token="s3cret")
    try:
        auth = {"Authorization": "Bearer s3cret"}
        r = httpx.post(a.url + "/v1/robot/move_ee", json={"xyz": [1e9, 0, 0]}, headers=auth)
        assert r.status_code == 422
        r = httpx.post(a.url + "/v1/robot/move_ee", json={"xyz": "up"}, headers=auth)
        assert r.status_code == 422
        assert robot.can_reach([0.0, 0.5, 0.2]) is True
    finally:
        robot.close()


def test_unreachable_agent_is_a_clear_error():
    with pytest.raises(RobotUnavailableError, match="cannot be reached"):
        RemoteRobot("http://127.0.0.1:9", name="gone")  # the discard port: nothing listens


def test_estop_reaches_a_motion_in_flight(robot_agent):
    a = robot_agent()
    robot = RemoteRobot(a.url)
    errors = []

    def move():
        try:
            robot.wait(30.0)  # a long motion-like call holding the agent's verb lock
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=move)
    t.start()
    time.sleep(0.5)
    started = time.time()
    robot.stop()
    t.join(20)
    try:
        assert not t.is_alive() and time.time() - started < 10  # the 30 s wait was cut short
        assert not errors or isinstance(errors[0], RobotStoppedError)
        with pytest.raises(RobotStoppedError):
            robot.move_ee([0.0, 0.5, 0.25])  # no motion until resume()
        robot.resume()
        robot.move_ee([0.0, 0.5, 0.25])  # moves again after resume
    finally:
        robot.close()


def test_service_runs_programs_on_a_remote_robot(robot_agent, make_service, client_for):
    a = robot_agent()
    client = client_for(make_service(robots=f"lab={a.url}"))
    health = client.get("/healthz").json()
    assert health["robots"] == ["sim", "lab"]
    r = client.post("/v1/sessions", json={"robot": "lab", "scene": SCENE})
    assert r.status_code == 422 and "omit 'scene'" in detail(r)
    r = client.post("/v1/sessions", json={"robot": "lab"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert set(r.json()["state"]["objects"]) == {"red block", "blue bowl"}
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded", t["error"]
    assert in_bowl(t["state_after"], "red block", "blue bowl")
    assert in_bowl(a.app.state.world.state(), "red block", "blue bowl")
    assert client.post(f"/v1/sessions/{sid}/reset", json={"seed": 3}).status_code == 422
    assert client.post(f"/v1/sessions/{sid}/reset").status_code == 200


def test_agent_dying_fails_the_run_and_the_service_keeps_serving(robot_agent, make_service, client_for):
    a = robot_agent()
    client = client_for(make_service(robots=f"lab={a.url}"))
    sid = client.post("/v1/sessions", json={"robot": "lab"}).json()["id"]
    a.stop()
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "failed"
    assert "cannot be reached" in t["error"]["message"]
    assert t["error"]["kind"] == "primitive"  # the robot's failure, not the service's ("internal")
    r = client.get(f"/v1/sessions/{sid}/state")
    assert r.status_code == 503 and "cannot be reached" in r.json()["detail"]
    r = client.post("/v1/sessions", json={"robot": "lab"})
    assert r.status_code == 503
    r = client.post("/v1/sessions", json={"robot": "nowhere"})
    assert r.status_code == 422 and "sim, lab" in detail(r)
    assert client.post("/v1/sessions", json={"robot": "sim", "scene": SCENE}).status_code == 201


def test_one_real_robot_runs_one_program_at_a_time_whichever_session_asks(
    robot_agent, make_service, client_for
):
    """Two sessions on one arm: their runs take turns (each was rehearsed on the scene as it stood),
    while the service would run two programs at once (its run slots are two)."""
    from tests.service.test_service_api import wait_status

    agent = robot_agent()
    client = client_for(make_service(robots=f"lab={agent.url}", max_concurrent_runs=2))
    sessions = [client.post("/v1/sessions", json={"robot": "lab"}).json()["id"] for _ in range(2)]
    code = "move_gripper_to([0.1, 0.5, 0.25])\nmove_gripper_to([-0.1, 0.5, 0.25])\nsay('moved')"
    runs = [
        client.post(f"/v1/sessions/{sid}/programs", json={"code": code}).json()["run_id"] for sid in sessions
    ]
    traces = [
        wait_status(client, run_id, ("succeeded", "failed", "cancelled"), timeout=60) for run_id in runs
    ]
    assert [t["status"] for t in traces] == ["succeeded", "succeeded"], [t["error"] for t in traces]
    first, second = sorted((t["timings"] for t in traces), key=lambda t: t["started_at"])
    assert second["started_at"] >= first["ended_at"]  # never both on the arm at once


class SlowArm(FakeBackend):
    """A fake arm whose motions take real time, as a real arm's do, and end early on stop()."""

    def __init__(self) -> None:
        super().__init__({"red block": [0.0, 0.5], "blue bowl": [0.1, 0.5]})
        self.motion_ended_at: float | None = None

    def _move_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self._check()
                time.sleep(0.01)
        finally:
            self.motion_ended_at = time.monotonic()

    def wait(self, seconds: float) -> None:
        self._move_for(seconds)

    def move_ee(self, xyz, yaw: float = 0.0, speed: float = 1.0) -> None:
        self._move_for(20.0)


def test_estop_is_not_held_back_by_reads_waiting_for_a_motion(robot_agent):
    """More reads wait behind a motion than the agent has pool threads: the stop still gets through."""
    import httpx

    a = robot_agent(app=make_agent_app(SlowArm(), robot="slow", heartbeat_ms=RELAXED_HEARTBEAT_MS))
    robot = RemoteRobot(a.url)
    errors: list[Exception] = []

    def move() -> None:
        try:
            robot.wait(20.0)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def read() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(a.url + "/v1/robot/state", timeout=30)

    mover = threading.Thread(target=move)
    mover.start()
    time.sleep(0.3)
    readers = [threading.Thread(target=read) for _ in range(60)]  # anyio lends sync routes 40 threads
    for r in readers:
        r.start()
    time.sleep(1.0)
    try:
        started = time.monotonic()
        robot.stop()
        assert time.monotonic() - started < 5
        mover.join(10)
        assert not mover.is_alive() and isinstance(errors[0], RobotStoppedError)
    finally:
        for r in readers:
            r.join(30)
        robot.close()


def test_a_motion_whose_answer_is_lost_is_stopped(robot_agent):
    """The service stops waiting for a motion (timeout): the agent's arm stops too, and then moves
    again for the next motion."""
    arm = SlowArm()
    a = robot_agent(app=make_agent_app(arm, robot="slow", heartbeat_ms=RELAXED_HEARTBEAT_MS))
    robot = RemoteRobot(a.url, motion_timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(RobotUnavailableError, match="in time"):
            robot.move_ee([0.0, 0.5, 0.2])
        deadline = time.monotonic() + 5
        while arm.motion_ended_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert arm.motion_ended_at is not None and arm.motion_ended_at - started < 3  # not the 20 s
        robot.wait(0.1)  # the robot is free again
    finally:
        robot.close()


def test_agent_refuses_web_pages_and_oversized_bodies(robot_agent):
    """A page on any site could POST to a loopback agent without a token (no preflight for a
    body-less POST): requests carrying an Origin are refused, and so are bodies over the limit."""
    import httpx

    from capstan.service.robot_agent import MAX_BODY_BYTES

    a = robot_agent()
    robot = RemoteRobot(a.url)
    try:
        robot.stop()
        page = httpx.post(a.url + "/v1/robot/resume", headers={"Origin": "https://example.com"})
        assert page.status_code == 403
        with pytest.raises(RobotStoppedError):
            robot.move_ee([0.0, 0.5, 0.25])  # the page did not lift the e-stop
        big = httpx.put(a.url + "/v1/robot/scene", content=b"[" + b"0," * MAX_BODY_BYTES + b"0]")
        assert big.status_code == 413
        robot.resume()
        robot.move_ee([0.0, 0.5, 0.25])
    finally:
        robot.close()


def test_the_agent_reads_its_requests_strictly(robot_agent):
    """ "yes" is not true, 1 is not true, and true is not a coordinate."""
    import httpx

    a = robot_agent()
    robot = RemoteRobot(a.url)
    try:
        for path, body in [
            ("/v1/robot/gripper", {"closed": "yes"}),
            ("/v1/robot/resume", {"watchdog": 1}),
            ("/v1/robot/move_ee", {"xyz": [True, 0.5, 0.2]}),
        ]:
            assert httpx.post(a.url + path, json=body).status_code == 422, (path, body)
        robot.move_ee([0.0, 0.5, 0.25])  # integers and floats as coordinates still do
        assert httpx.post(a.url + "/v1/robot/can_reach", json={"xyz": [0, 0.5, 0.25]}).json()["reachable"]
    finally:
        robot.close()


def test_a_service_force_cap_below_the_agent_s_is_refused_not_ignored(robot_agent):
    """Only the agent can cap the grasp force: a lower cap on the service side fails the robot
    closed with a message, instead of being quietly left unapplied."""
    from capstan.primitives.envelope import Envelope, EnvelopedBackend

    a = robot_agent()
    robot = RemoteRobot(a.url, name="lab")
    try:
        theirs = robot.agent_envelope
        assert theirs is not None
        EnvelopedBackend(robot, theirs)  # the same caps: fine
        lower = Envelope.from_dict({**theirs.to_dict(), "max_force_n": theirs.max_force_n / 2})
        with pytest.raises(RobotUnavailableError, match="only the agent can apply it"):
            EnvelopedBackend(robot, lower)
    finally:
        robot.close()
