"""The whole real-robot path: Capstan's HTTP API -> the service (uvicorn on loopback, this process)
-> a loopback TCP proxy (its own process) -> `capstan robot-agent --backend franka` (its own
process) -> franky -> franky-sim (MuJoCo, its own process, real blocks). What happened is read from
franky-sim itself: true block positions and joint angles, never what the service or the agent say.
The model is a scripted provider. One franky-sim, agent and proxy serve the module; each test has
its own service.
"""

from __future__ import annotations

import json
import math
import time

import httpx
import numpy as np
import pytest

from capstan.bench.robot_rig import AgentProcess, ServiceServer
from capstan.bench.tcp_proxy import ProxyProcess
from capstan.llm.scripted import ScriptedProvider
from capstan.primitives.remote import RemoteRobot
from capstan.service.agent_watchdog import DEFAULT_HEARTBEAT_MS
from tests.service.test_service_api import fenced

pytestmark = pytest.mark.slow

HOME = [0.0, 0.45, 0.30]
RED_START = [-0.05, 0.5]
# a resting arm reads ~1e-4 rad/s, one franky has stopped ~0.08 (its joints still): still is below this
STILL_RAD_S = 0.15
MOVING_RAD_S = 0.3  # even a slow motion (speed 0.1) turns its joints at ~0.8 rad/s
ARM_SETTLED_RAD = 2e-3  # a resting arm's joints wander less than this while franky holds them
# the tray: a keep-out zone on the table, and a program that reaches into it
TRAY = {"name": "tray", "x": [0.05, 0.2], "y": [0.55, 0.68], "z": [0.0, 0.2]}
INTO_TRAY = "move_gripper_to([0.12, 0.6, 0.1])\nsay('at the tray')"
FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def blocks() -> dict:
    return {
        "red block": {"color": "red", "position": RED_START},
        "blue block": {"color": "blue", "position": [0.1, 0.42]},
    }


# The agent's own default: the heartbeats go from the service's heartbeat process through the proxy's
# process, so nothing this interpreter does (a twin rehearsal holds its GIL for ~0.3 s) delays them.
HEARTBEAT_MS = DEFAULT_HEARTBEAT_MS


@pytest.fixture(scope="module")
def agent(franky_sim):
    with AgentProcess(franky_sim.hostname, ["--heartbeat-ms", str(HEARTBEAT_MS)]) as process:
        yield process


@pytest.fixture(scope="module")
def line(agent):
    """The service's only way to the agent: a proxy the tests can cut."""
    with ProxyProcess(agent.port) as proxy:
        yield proxy


@pytest.fixture
def arm(agent, franky_sim, line):
    """A line of the test's own to the agent, never cut (RemoteRobot: it keeps its own heartbeat);
    the arm resumed (as its operator: a watchdog stop a cut line left is lifted too), at HOME and at
    rest, the service's line open."""
    if not line.listening:
        line.restore()
    robot = RemoteRobot(agent.url, name="franka (test)")
    try:
        robot.clear_watchdog()
        robot.move_ee(HOME, speed=0.5)
        wait_still(franky_sim)
        yield robot
    finally:
        robot.close()


@pytest.fixture
def lab(line, tmp_path):
    """lab(replies | llm=provider, **settings) -> a client of a service whose robot 'franka' is the agent."""
    servers: list[ServiceServer] = []
    clients: list[httpx.Client] = []

    def start(replies=(), llm=None, **settings) -> httpx.Client:
        settings.setdefault("candidates", 1)
        server = ServiceServer(
            llm=llm or ScriptedProvider(list(replies)),
            data_dir=tmp_path / f"data{len(servers)}",
            robots=f"franka={line.url}",
            **settings,
        ).start()
        servers.append(server)
        clients.append(httpx.Client(base_url=server.url, timeout=120))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.close()


def joint_speeds(sim, n: int = 3) -> list[float]:
    return [sim.joint_speed() for _ in range(n)]


def wait_still(sim, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while float(np.median(joint_speeds(sim))) >= STILL_RAD_S:
        assert time.monotonic() < deadline, "the arm did not come to rest"


def franka_session(client, arm, objects: dict) -> str:
    """A session on robot 'franka' with `objects` declared to it."""
    r = client.post("/v1/sessions", json={"robot": "franka", "objects": objects})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def candidates(trace: dict) -> list[dict]:
    return [c for a in trace["attempts"] for c in a.get("candidates", [])]


def wait_status(client, run_id: str, statuses, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        t = client.get(f"/v1/runs/{run_id}").json()
        if t["status"] in statuses:
            return t
        assert time.monotonic() < deadline, f"run {run_id} still {t['status']}"
        time.sleep(0.05)


def test_a_pick_and_place_command_moves_the_real_block_to_the_target(lab, arm, franky_sim):
    franky_sim.place_blocks({"red block": RED_START})
    time.sleep(0.3)
    truth = franky_sim.block_positions()
    target = [0.12, 0.58]
    program = f"put_first_on_second('red block', {target})\nsay('done')"
    client = lab([fenced(program)])
    sid = franka_session(
        client, arm, {name: {"position": [float(v) for v in truth[name][:2]]} for name in truth}
    )
    t = client.post(
        f"/v1/sessions/{sid}/commands", params={"wait": "true"}, json={"text": "red block to the tray spot"}
    ).json()
    assert t["status"] == "succeeded", json.dumps(t["attempts"])[:3000]
    (rehearsal,) = candidates(t)
    assert rehearsal["twin"] is True and rehearsal["rejected"] is None  # rehearsed before it ran
    red = franky_sim.block_positions()["red block"]
    assert math.dist(red[:2], target) < 0.02, f"the real block is at {red}, the target {target}"
    assert 0.01 < red[2] < 0.03  # resting on the table
    state = client.get(f"/v1/sessions/{sid}/state").json()
    assert math.dist(state["objects"]["red block"]["position"][:2], target) < 0.02  # the declared scene too


def test_an_envelope_breach_in_generated_code_never_reaches_franky(lab, arm, franky_sim, tmp_path):
    envelope = tmp_path / "envelope.json"
    envelope.write_text(json.dumps({"franka": {"x": [-0.25, 0.25], "y": [0.3, 0.7], "keep_out": [TRAY]}}))
    # the first answer and each repair (each asked twice: the same program again is sent back once)
    llm = ScriptedProvider([fenced(INTO_TRAY)] * 5)
    client = lab(llm=llm, envelope=str(envelope))
    sid = franka_session(client, arm, {"red block": {"position": RED_START}})
    before = franky_sim.joint_positions()
    t = client.post(f"/v1/sessions/{sid}/commands", params={"wait": "true"}, json={"text": "go to the tray"})
    t = t.json()
    assert t["status"] == "failed"
    refused = candidates(t)
    assert refused and all(c["twin"] and c["rejected"] == "primitive" for c in refused)
    assert (
        refused[0]["error"]["message"].startswith("EnvelopeError")
        and "'tray'" in refused[0]["error"]["message"]
    )
    # the refusal went back to the model as feedback for its next answer
    assert "EnvelopeError" in "\n".join(m.content for m in llm.requests[1].messages)
    assert t["primitive_calls"] == []
    assert np.allclose(franky_sim.joint_positions(), before, atol=ARM_SETTLED_RAD), "the arm moved"


def test_cutting_the_agents_line_mid_motion_stops_the_arm(lab, arm, agent, franky_sim, line):
    client = lab()
    sid = franka_session(client, arm, {"red block": {"position": RED_START}})
    far = [-0.2, 0.65, 0.1]
    # one slow motion (~4 s on franky-sim), so that it is still under way when the watchdog trips
    program = f"move_gripper_to({far}, speed=0.1)"
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": program}).json()["run_id"]
    deadline = time.monotonic() + 60
    while float(np.median(joint_speeds(franky_sim))) < MOVING_RAD_S:
        assert time.monotonic() < deadline, "the arm never moved"
    line.cut()
    cut_at = time.monotonic()
    watchdog = {}
    while not watchdog.get("tripped"):  # the agent's watchdog noticed the silence
        assert time.monotonic() - cut_at < HEARTBEAT_MS / 1000 + 2.0, f"no trip: {watchdog}"
        watchdog = httpx.get(f"{agent.url}/v1/robot/watchdog", timeout=5).json()
        time.sleep(0.02)
    # the e-stop's own deceleration (~0.2 s on franky-sim) and a wide margin
    # (franky-sim reports ~0.08 rad/s for an arm franky has stopped, though its joints hold still)
    while float(np.median(joint_speeds(franky_sim))) >= STILL_RAD_S:
        assert time.monotonic() - cut_at < HEARTBEAT_MS / 1000 + 4.0, "the arm kept moving"
    line.restore()
    ee = arm.ee_position()
    assert np.linalg.norm(ee - far) > 0.05, "the motion ran to its end"
    assert wait_status(client, run_id, FINAL)["status"] != "succeeded"


def test_a_rejected_approval_never_moves_the_arm(lab, arm, franky_sim):
    client = lab([fenced("move_gripper_to([0.15, 0.6, 0.2])\nsay('there')")], approval="required")
    sid = franka_session(client, arm, {"red block": {"position": RED_START}})
    before = franky_sim.joint_positions()
    run_id = client.post(f"/v1/sessions/{sid}/commands", json={"text": "go right"}).json()["run_id"]
    t = wait_status(client, run_id, ("awaiting_approval", *FINAL))
    assert t["status"] == "awaiting_approval" and "move_gripper_to" in t["approval"]["code"]
    time.sleep(0.5)  # a program that slipped past the gate would be moving by now
    assert np.allclose(franky_sim.joint_positions(), before, atol=ARM_SETTLED_RAD)
    body = {"attempt": t["approval"]["attempt"], "by": "operator", "reason": "not now"}
    r = client.post(f"/v1/runs/{run_id}/reject", json=body)
    assert r.status_code == 200, r.text
    t = wait_status(client, run_id, FINAL)
    assert t["status"] == "failed" and t["error"]["kind"] == "rejected"
    time.sleep(0.5)
    assert np.allclose(franky_sim.joint_positions(), before, atol=ARM_SETTLED_RAD), "the arm moved"
    assert t["primitive_calls"] == []


def test_franky_sim_answers_joint_angles_and_sets_blocks_down(franky_sim, arm):
    """The two queries these tests and `capstan bench robot` rely on."""
    joints = franky_sim.joint_positions()
    assert joints.shape == (7,) and np.all(np.isfinite(joints))
    franky_sim.place_blocks({"blue block": [0.15, 0.4]})
    time.sleep(0.3)
    blue = franky_sim.block_positions()["blue block"]
    assert np.allclose(blue[:2], [0.15, 0.4], atol=2e-3) and 0.015 < blue[2] < 0.025
    with pytest.raises(ValueError, match="place needs"):
        franky_sim.place_blocks({"purple block": [0.0, 0.5]})


def test_the_robot_bench_runs_the_whole_chain_and_reports_its_figures(capsys):
    """`capstan bench robot` with one scene, one e-stop, one direct stop (the floor) and one cut
    line: its own franky-sim, agent and service.
    Figures are the bench's to report; only that it measured them is checked here."""
    from capstan.service.cli import main

    assert (
        main(
            ["bench", "robot", "--json", "--scenes", "1", "--estop-trials", "1", "--watchdog-trials", "1"]
            + ["--heartbeat-ms", str(HEARTBEAT_MS)]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    (scene,) = result["scenes"]
    assert scene["success"], scene["why"]
    assert result["pick_place_success_rate"] == 1.0 and result["pick_place_n"] == 1
    assert result["estop_latency_n"] == 1 and result["estop_latency_ms_p50"] > 0
    assert result["estop_trials"][0]["run"] == "cancelled", result["estop_trials"][0]
    assert result["estop_floor_n"] == 1 and result["estop_floor_trials"][0]["run"] != "cancelled"
    assert isinstance(result["estop_over_floor_ms"], float)
    assert result["watchdog_stop_n"] == 1 and result["heartbeat_ms"] == HEARTBEAT_MS
    assert result["dry_run_ms_p50"] > 0 and result["pick_place_median_s"] > 0
    assert result["commit"] and result["machine"]["cpus"] and result["failures"] == []
