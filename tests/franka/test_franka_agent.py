"""The Franka behind the robot agent, over HTTP: Capstan's RemoteRobot declares the scene and the
policy API puts a real (franky-sim) block where asked; the CLI serves franky-sim on its own; an
agent whose robot takes no declared scene says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from capstan.primitives.errors import InvalidArgumentError, RobotStoppedError
from capstan.primitives.remote import RemoteRobot
from capstan.service.assembly import build_policy_api
from capstan.service.robot_agent import make_agent_app, sim_agent_app
from tests.servers import RELAXED_HEARTBEAT_MS, wait_for_http
from tests.service.conftest import Agent

pytestmark = pytest.mark.slow


@pytest.fixture
def franka_agent(franka):
    franka.resume()
    # not a watchdog test: out of reach of the test process's GIL stalls (tests/servers.py)
    agent = Agent(make_agent_app(franka, robot="franka-sim", heartbeat_ms=RELAXED_HEARTBEAT_MS))
    yield agent
    agent.stop()


def test_put_first_on_second_on_a_declared_scene_moves_the_real_block(franka_agent, franky_sim):
    robot = RemoteRobot(franka_agent.url, name="franka")
    try:
        assert robot.supports_declaring and robot.supports_recovery
        red = franky_sim.block_positions()["red block"]
        robot.declare(
            {
                "red block": {"position": [float(red[0]), float(red[1])]},
                "blue bowl": {"position": [-0.15, 0.62]},
            }
        )
        api = build_policy_api(robot)
        assert sorted(api.get_obj_names()) == ["blue bowl", "red block"]
        target = [0.12, 0.58]
        api.put_first_on_second("red block", target)
        truth = franky_sim.block_positions()["red block"]
        assert np.linalg.norm(truth[:2] - target) < 0.02, f"block at {truth}, target {target}"
        assert np.linalg.norm(api.get_obj_pos("red block")[:2] - target) < 0.02  # the declared scene too
        # a bad declaration is a 422 that RemoteRobot raises as the same error, and changes nothing
        with pytest.raises(InvalidArgumentError, match="outside the workspace"):
            robot.declare({"red block": {"position": [2.0, 0.5]}})
        assert "blue bowl" in robot.state()["objects"]
        robot.recover()
    finally:
        robot.close()


def test_the_estop_over_http_halts_a_franka_motion_in_flight(franka_agent, franky_sim):
    robot = RemoteRobot(franka_agent.url, name="franka")
    outcome: list[BaseException | None] = []
    target = [0.2, 0.65, 0.25]

    def move():
        try:
            robot.move_ee(target, speed=0.3)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    try:
        robot.move_ee([-0.2, 0.45, 0.25])
        deadline = time.monotonic() + 3
        while franky_sim.joint_speed() > 0.15 and time.monotonic() < deadline:
            time.sleep(0.02)  # franky-sim's arm settles ~0.3 s after its trajectory ends
        mover = threading.Thread(target=move)
        mover.start()
        deadline = time.monotonic() + 3
        while (moving := franky_sim.joint_speed()) < 0.2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert moving >= 0.2, "the arm never moved"
        robot.stop()
        mover.join(10)
        assert isinstance(outcome[0], RobotStoppedError)
        assert np.linalg.norm(robot.ee_position() - target) > 0.05, "the motion ran to its end"
        with pytest.raises(RobotStoppedError):
            robot.move_ee([0.0, 0.5, 0.2])
        robot.resume()
        robot.move_ee([0.0, 0.5, 0.2])
    finally:
        robot.close()


def test_an_agent_whose_robot_knows_its_scene_refuses_declarations():
    app = sim_agent_app({"objects": ["red block"], "seed": 1})
    agent = Agent(app)
    try:
        info = httpx.get(f"{agent.url}/v1/robot").json()
        assert info["declared_scene"] is False and info["recovery"] is False
        response = httpx.put(f"{agent.url}/v1/robot/scene", json={"objects": {}})
        assert response.status_code == 409
        assert "takes no declared scene" in response.json()["error"]["message"]
        assert httpx.post(f"{agent.url}/v1/robot/recover", json={}).status_code == 409
        robot = RemoteRobot(agent.url)
        assert not robot.supports_declaring
        with pytest.raises(NotImplementedError, match="supports_declaring"):
            robot.declare({})
        robot.close()
    finally:
        agent.stop()
        app.state.world.close()


def test_bad_scene_bodies_are_422(franka_agent):
    for body in ({"objects": "red block"}, {"things": {}}, {"objects": {"red block": {"position": [9, 9]}}}):
        assert httpx.put(f"{franka_agent.url}/v1/robot/scene", json=body).status_code == 422


def test_the_cli_serves_franky_sim_with_its_blocks_declared(free_port, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    log = tmp_path / "agent.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "capstan.service.cli",
                "robot-agent",
                "--backend",
                "franka",
                "--franka-sim",
            ]
            + ["--port", str(free_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = f"http://127.0.0.1:{free_port}"
        info = wait_for_http(f"{url}/v1/robot", proc, 90, log.read_text).json()
        assert info["robot"] == "franka-sim" and info["declared_scene"] is True
        state = httpx.get(f"{url}/v1/robot/state", timeout=10).json()
        assert sorted(state["objects"]) == ["blue block", "red block"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-2000:]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--backend", "franka"], "--franka-host HOST"),
        (["--franka-sim"], "need --backend franka"),
        (
            ["--backend", "franka", "--franka-sim", "--scene", "{}"],
            "--scene and --seed are for --backend sim",
        ),
        (["--backend", "franka", "--franka-sim", "--calibration", "/nonexistent.json"], "cannot read"),
    ],
)
def test_the_cli_refuses_franka_flags_that_do_not_fit(flags, says):
    done = subprocess.run(
        [sys.executable, "-m", "capstan.service.cli", "robot-agent", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode != 0 and says in done.stderr, done.stderr[-1500:]
    assert "Traceback" not in done.stderr
