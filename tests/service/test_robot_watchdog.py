"""Stop means stop: the robot agent's heartbeat watchdog against a real link.

A PyBullet agent served by uvicorn on loopback, RemoteRobot talking to it through a TCP proxy the
test cuts like a pulled cable; the agent's world is read directly to see whether the arm still moves.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from capstan.bench.tcp_proxy import LoopbackProxy
from capstan.primitives import PolicyAPI
from capstan.primitives.errors import RobotStoppedError, RobotUnavailableError
from capstan.primitives.remote import RemoteRobot
from capstan.service.agent_watchdog import DEFAULT_HEARTBEAT_MS
from capstan.service.cli import main
from capstan.service.robot_agent import make_agent_app

LIMIT_S = DEFAULT_HEARTBEAT_MS / 1000
# An agent served in this process shares its GIL with the test and the PyBullet stepping, and this
# machine's two cores are shared with other test runs: heartbeat gaps of 0.3-0.45 s were measured
# here during a crawling move, which trip the default limit before any cut. The tests with the agent
# in this process use this limit; the default is tested with the agent in a process of its own.
IN_PROCESS_MS = 1000
# beyond the limit: the watchdog looks every limit/10, the last beat may be limit/4 old at the cut
MARGIN_S = 0.5
FAR = [0.2, 0.6, 0.15]  # about 45 cm from where the gripper starts
CRAWL = 0.001  # of full speed: a move to FAR takes several seconds of wall time


@pytest.fixture
def proxies():
    made: list[LoopbackProxy] = []

    def make(url: str) -> LoopbackProxy:
        made.append(LoopbackProxy(urlsplit(url).port or 80).start())
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def in_background(fn) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def wait_until_moved(world, start: np.ndarray, mover: threading.Thread, errors: list, timeout_s=30) -> None:
    deadline = time.monotonic() + timeout_s
    while np.linalg.norm(world.ee_position() - start) < 0.01:
        assert mover.is_alive(), f"the motion ended before it got anywhere: {errors}"
        assert time.monotonic() < deadline, "the arm did not start moving"
        time.sleep(0.01)


def last_movement_after(world, since: float, watch_s: float = 2.0) -> float:
    """Seconds from `since` (time.monotonic()) until the world last stepped or the gripper last moved,
    watched for `watch_s`."""
    last, steps, ee = since, world.time_s, world.ee_position()
    while time.monotonic() - since < watch_s:
        time.sleep(0.005)
        now_steps, now_ee = world.time_s, world.ee_position()
        if now_steps != steps or not np.allclose(now_ee, ee, atol=1e-6):
            last, steps, ee = time.monotonic(), now_steps, now_ee
    return last - since


def report(agent) -> dict:
    return httpx.get(agent.url + "/v1/robot/watchdog").json()


def test_cutting_the_link_stops_a_motion_in_flight(robot_agent, proxies):
    a = robot_agent(heartbeat_ms=IN_PROCESS_MS)
    limit_s = IN_PROCESS_MS / 1000
    world = a.app.state.world
    proxy = proxies(a.url)
    robot = RemoteRobot(proxy.url, name="lab")
    direct = None
    try:
        assert robot.heartbeat_ms == IN_PROCESS_MS and robot.heartbeat is not None
        start = world.ee_position()
        mover, errors = in_background(lambda: robot.move_ee(FAR, speed=CRAWL))
        wait_until_moved(world, start, mover, errors)
        assert not report(a)["tripped"]  # heartbeats flow through the proxy until the cut
        cut_at = time.monotonic()
        proxy.cut()
        stopped_after = last_movement_after(world, cut_at, limit_s + MARGIN_S + 0.5)
        assert stopped_after < limit_s + MARGIN_S, f"the arm moved on for {stopped_after:.2f} s after the cut"
        assert world.stopped and np.linalg.norm(world.ee_position() - FAR) > 0.1  # stopped short
        w = report(a)
        assert w["tripped"] and "no heartbeat" in w["reason"] and w["tripped_at"] <= time.time()
        assert w["last_heartbeat_age_ms"] > IN_PROCESS_MS
        mover.join(10)
        assert not mover.is_alive() and isinstance(errors[0], RobotUnavailableError)  # the link died
        deadline = time.monotonic() + 5
        while robot.heartbeat.failures == 0:  # counted, never raised
            assert time.monotonic() < deadline
            time.sleep(0.02)

        # latched: a client with a working link may not move it either, however long it waits
        direct = RemoteRobot(a.url, name="lab")
        time.sleep(2 * limit_s)
        with pytest.raises(RobotStoppedError, match="heartbeat watchdog stopped the robot"):
            direct.move_ee([0.0, 0.5, 0.25])
        with pytest.raises(RobotStoppedError):
            direct.set_gripper(True)
        assert direct.state()["objects"]  # reads stay allowed
        with pytest.raises(RobotStoppedError, match='resume with \\{"watchdog": true\\}'):
            direct.resume()  # the service's plain resume (after a cancelled run) does not clear it
        assert report(a)["tripped"]
        direct.clear_watchdog()  # the one way out: the operator's
        assert not report(a)["tripped"]
        direct.move_ee([0.0, 0.5, 0.25])
        assert np.allclose(world.ee_position(), [0.0, 0.5, 0.25], atol=0.01)
    finally:
        robot.close()
        if direct is not None:
            direct.close()


def test_without_the_watchdog_a_cut_link_leaves_the_arm_moving(robot_agent, proxies, caplog):
    """The control for the test above: the proxy cut alone stops nothing."""
    from capstan import sim

    world = sim.World({"objects": ["red block", "blue bowl"], "seed": 7})
    a = robot_agent(app=make_agent_app(world, heartbeat_ms=0, unsafe_no_heartbeat=True))
    proxy = proxies(a.url)
    robot = RemoteRobot(proxy.url)
    try:
        assert robot.heartbeat_ms == 0 and robot.heartbeat is None
        assert "UNSAFE" in caplog.text and "without a heartbeat watchdog" in caplog.text  # said loudly
        mover, errors = in_background(lambda: robot.move_ee(FAR, speed=CRAWL))
        wait_until_moved(world, world.ee_position(), mover, errors)
        cut_at = time.monotonic()
        proxy.cut()
        limit_s = IN_PROCESS_MS / 1000  # what the watchdog above had to meet
        assert last_movement_after(world, cut_at, limit_s + MARGIN_S + 0.5) > limit_s + MARGIN_S  # moving on
        world.stop()
        mover.join(10)
    finally:
        robot.close()
        a.stop()
        world.close()


def test_no_heartbeat_no_motion_and_lapses_latch(robot_agent):
    a = robot_agent(heartbeat_ms=DEFAULT_HEARTBEAT_MS)
    url = a.url + "/v1/robot"
    assert httpx.get(url).json()["heartbeat_ms"] == DEFAULT_HEARTBEAT_MS
    w = report(a)
    assert w == {
        "heartbeat_ms": DEFAULT_HEARTBEAT_MS,
        "tripped": False,
        "tripped_at": None,
        "reason": None,
        "last_heartbeat_age_ms": None,
        "clients": 0,
    }
    # fail closed: never a heartbeat, never a motion; reads stay allowed
    for path, body in (
        ("/move_ee", {"xyz": [0.0, 0.5, 0.25]}),
        ("/gripper", {"closed": True}),
        ("/wait", {"seconds": 1}),
    ):
        r = httpx.post(url + path, json=body)
        assert r.status_code == 409, path
        assert r.json()["error"]["type"] == "RobotUnavailableError"
        assert "no heartbeat" in r.json()["error"]["message"]
    assert httpx.get(url + "/state").status_code == 200
    assert httpx.post(url + "/can_reach", json={"xyz": [0.0, 0.5, 0.25]}).status_code == 200
    assert httpx.post(url + "/heartbeat", json={"client": "bad id!"}).status_code == 422

    # one heartbeat allows a motion while it is fresh...
    assert httpx.post(url + "/heartbeat", json={"client": "t"}).json() == {
        "heartbeat_ms": DEFAULT_HEARTBEAT_MS,
        "tripped": False,
    }
    assert httpx.post(url + "/wait", json={"seconds": 0.1}).status_code == 200
    # ... and its lapse stops the robot, idle or not, until resumed
    time.sleep(LIMIT_S + MARGIN_S)
    assert report(a)["tripped"] and a.app.state.world.stopped
    r = httpx.post(url + "/wait", json={"seconds": 0.1})
    assert r.status_code == 409 and r.json()["error"]["type"] == "RobotStoppedError"
    time.sleep(LIMIT_S)
    assert report(a)["tripped"]  # it never resumes by itself
    assert httpx.post(url + "/resume", json={}).status_code == 409  # a plain resume leaves the trip
    assert httpx.post(url + "/resume", json={"watchdog": True}).status_code == 200
    assert not report(a)["tripped"] and not a.app.state.world.stopped
    r = httpx.post(url + "/wait", json={"seconds": 0.1})  # resumed, but still nobody beating
    assert r.status_code == 409 and r.json()["error"]["type"] == "RobotUnavailableError"

    # a client that says goodbye leaves without a trip
    httpx.post(url + "/heartbeat", json={"client": "t"})
    httpx.post(url + "/heartbeat", json={"client": "t", "end": True})
    time.sleep(LIMIT_S + MARGIN_S)
    assert not report(a)["tripped"] and report(a)["clients"] == 0


def test_heartbeats_flowing_do_not_interrupt_a_long_run(free_port, proxies):
    """`capstan robot-agent` in a process of its own, as it runs beside a robot (in this process its
    PyBullet stepping would compete with the test for one GIL), at twice the default limit: the beats
    pass through this process's proxy threads, which a loaded 2-core machine can hold up ~250 ms."""
    import subprocess
    import sys

    from tests.servers import wait_for_http

    limit_ms = 2 * DEFAULT_HEARTBEAT_MS
    argv = [sys.executable, "-m", "capstan.service.cli", "robot-agent", "--port", str(free_port)]
    argv += ["--heartbeat-ms", str(limit_ms)]
    url = f"http://127.0.0.1:{free_port}"
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        try:
            info = wait_for_http(url + "/v1/robot", proc, 60).json()
            assert info["heartbeat_ms"] == limit_ms
            robot = RemoteRobot(proxies(url).url, name="lab")
            try:
                heartbeat = robot.heartbeat
                assert heartbeat is not None and heartbeat.period_s == limit_ms / 1000 / 4
                started = time.monotonic()
                robot.move_ee(FAR, speed=CRAWL)  # seconds of motion, through the proxy
                PolicyAPI(robot).put_first_on_second("red block", "blue bowl")
                took = time.monotonic() - started
                assert took > 4 * limit_ms / 1000  # long enough for a trip, had the heartbeats stopped
                w = httpx.get(url + "/v1/robot/watchdog").json()
                assert not w["tripped"] and w["clients"] == 1, w
                assert heartbeat.failures == 0 and heartbeat.sent >= took / heartbeat.period_s / 2
            finally:
                robot.close()
            # close() stops the heartbeat process and says goodbye: no trip afterwards
            assert not heartbeat.running
            assert not any(
                t.name == f"capstan-heartbeat-{heartbeat.client_id}" for t in threading.enumerate()
            )
            time.sleep(LIMIT_S + MARGIN_S)
            w = httpx.get(url + "/v1/robot/watchdog").json()
            assert not w["tripped"] and w["clients"] == 0
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
    assert "heartbeat watchdog" not in err  # it logs every trip


def test_turning_the_watchdog_off_needs_the_unsafe_switch(capsys):
    from capstan import sim

    with sim.World({"objects": ["red block"], "seed": 1}) as world:
        with pytest.raises(ValueError, match="unsafe_no_heartbeat=True"):
            make_agent_app(world, heartbeat_ms=0)
        with pytest.raises(ValueError, match="20..10000 ms"):
            make_agent_app(world, heartbeat_ms=5)
    assert main(["robot-agent", "--heartbeat-ms", "0"]) == 2
    assert "--unsafe-no-heartbeat" in capsys.readouterr().err
    assert main(["robot-agent", "--unsafe-no-heartbeat"]) == 2
    assert "only with a heartbeat limit of 0" in capsys.readouterr().err


# within the default envelope's 60 motions per run, so its rehearsal on the twin passes first
LONG_MOTIONS = """
for i in range(8):
    move_gripper_to([0.2, 0.6, 0.15] if i % 2 == 0 else [-0.2, 0.4, 0.15], speed=0.01)
"""


def test_cancel_reaches_a_remote_motion_in_flight(robot_agent, make_service, client_for):
    """The service's cancel is an e-stop on RemoteRobot's own connection, so it gets through while
    the motion request holds the other one."""
    from tests.service.test_service_api import wait_status

    a = robot_agent()  # the relaxed limit: this is about the cancel path, not the watchdog
    world = a.app.state.world
    moves: list[str] = []  # "start" and "end" of each of the agent world's move_ee
    moving_at_stop: list[bool] = []
    real_move, real_stop = world.move_ee, world.stop

    def move(*args, **kwargs):
        moves.append("start")
        try:
            real_move(*args, **kwargs)
        finally:
            moves.append("end")

    def stop():
        moving_at_stop.append(moves[-1:] == ["start"])
        real_stop()

    world.move_ee, world.stop = move, stop  # the agent's routes call backend.move_ee() and .stop()
    client = client_for(make_service(robots=f"lab={a.url}"))
    sid = client.post("/v1/sessions", json={"robot": "lab"}).json()["id"]
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG_MOTIONS}).json()["run_id"]
    deadline = time.monotonic() + 30
    while moves.count("start") < 2:  # the second move has begun: it runs for most of a second
        assert time.monotonic() < deadline
        time.sleep(0.005)
    cancelled_at = time.monotonic()
    assert client.post(f"/v1/runs/{run_id}/cancel").json()["status"] in ("cancelling", "cancelled")
    t = wait_status(client, run_id, ("cancelled", "failed", "succeeded"), timeout=15)
    assert t["status"] == "cancelled" and time.monotonic() - cancelled_at < 5
    assert moving_at_stop == [True]  # the e-stop reached the agent while a motion ran
    assert t["primitive_calls"][-1]["error"]["type"] == "RobotStoppedError"  # and cut that motion short
    assert not report(a)["tripped"]  # the cancel did it, not the watchdog
    code = "move_gripper_to([0, 0.5, 0.25])"
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": code}).json()
    assert t["status"] == "succeeded", t["error"]  # resumed after the e-stop


def test_no_watchdog_thread_no_motion():
    """An app served without its lifespan has no watchdog thread: motions fail closed."""
    from fastapi.testclient import TestClient

    from capstan import sim

    with sim.World({"objects": ["red block"], "seed": 1}) as world:
        client = TestClient(make_agent_app(world))  # not entered: the lifespan does not run
        try:
            assert client.post("/v1/robot/heartbeat", json={"client": "t"}).status_code == 200
            r = client.post("/v1/robot/wait", json={"seconds": 0.1})
            assert r.status_code == 409 and "watchdog is not running" in r.json()["error"]["message"]
            assert client.get("/v1/robot/state").status_code == 200
        finally:
            client.close()


@pytest.fixture
def agent_process(free_port):
    """`capstan robot-agent` (a PyBullet world) at the default heartbeat limit, in its own process."""
    import subprocess
    import sys

    from tests.servers import wait_for_http

    argv = [sys.executable, "-m", "capstan.service.cli", "robot-agent", "--port", str(free_port)]
    url = f"http://127.0.0.1:{free_port}"
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert wait_for_http(url + "/v1/robot", proc, 60).json()["heartbeat_ms"] == DEFAULT_HEARTBEAT_MS
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_service_busy_building_worlds_keeps_its_robot_beating(agent_process):
    """Building a PyBullet world (a twin) holds this process's interpreter lock for up to ~0.6 s
    here; the heartbeats come from a process of their own, so the agent sees no lapse."""
    from capstan import sim

    robot = RemoteRobot(agent_process, name="lab")
    try:
        started = time.monotonic()
        while time.monotonic() - started < 4 * LIMIT_S * 4:  # a few seconds of worlds, back to back
            sim.World({"objects": ["red block", "blue bowl", "green block"], "seed": 3}).close()
        w = httpx.get(agent_process + "/v1/robot/watchdog").json()
        assert not w["tripped"], w
        assert robot.heartbeat is not None and robot.heartbeat.failures == 0
        robot.move_ee([0.0, 0.5, 0.25])  # and it may move
    finally:
        robot.close()


def test_a_service_that_dies_falls_silent_and_the_agent_stops_the_robot(agent_process):
    """The service's process killed outright: its heartbeat process notices (its lifeline closes)
    and stops beating without a goodbye, so the agent's watchdog trips."""
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from capstan.primitives.remote import RemoteRobot\n"
        f"robot = RemoteRobot({agent_process!r}, name='lab')\n"
        "print(robot.heartbeat._proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    service = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        beater = int(service.stdout.readline())
        time.sleep(4 * LIMIT_S)
        assert not httpx.get(agent_process + "/v1/robot/watchdog").json()["tripped"]  # beating
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        killed_at = time.monotonic()
        while not httpx.get(agent_process + "/v1/robot/watchdog").json()["tripped"]:
            assert time.monotonic() - killed_at < LIMIT_S + MARGIN_S + 1.0, "the watchdog never tripped"
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while _alive(beater):  # and the orphaned heartbeat process is gone too
            assert time.monotonic() < deadline, "the heartbeat process outlived its service"
            time.sleep(0.05)
    finally:
        service.kill()
        service.wait(10)
        if service.stdout is not None:
            service.stdout.close()


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped by init) counts as gone
        return f.read().split()[2] != "Z"
