"""Safety envelopes in the service and the robot agent: configuration that fails closed, every real
robot wrapped, the agent enforcing its own envelope over HTTP, and each run starting its budgets."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from capstan.primitives.envelope import Box, Envelope, EnvelopedBackend
from capstan.primitives.errors import EnvelopeError
from capstan.primitives.remote import RemoteRobot
from capstan.service.config import ConfigError, Settings

SCENE = {"objects": ["red block", "blue bowl"], "seed": 7}
BOX = {"x": [-0.25, 0.25], "y": [0.22, 0.7]}
TRAY = Box("tray", x=(0.1, 0.2), y=(0.55, 0.65), z=(0.0, 0.1))


def envelope_file(tmp_path, data) -> str:
    path = tmp_path / "envelopes.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def frozen(world) -> tuple:
    objects = {n: tuple(np.round(o["position"], 6)) for n, o in world.state()["objects"].items()}
    return world.time_s, tuple(np.round(world.ee_position(), 6)), objects


# ---------------------------------------------------------------------------- configuration


def test_capstan_envelope_is_read_and_checked(tmp_path):
    env = {"CAPSTAN_ROBOTS": "lab=http://127.0.0.1:9", "CAPSTAN_ENVELOPE": ""}
    assert Settings.from_env(env).robot_envelopes() == {}
    env["CAPSTAN_ENVELOPE"] = envelope_file(tmp_path, {"lab": {**BOX, "max_speed": 0.2}, "sim": BOX})
    envelopes = Settings.from_env(env).robot_envelopes()
    assert envelopes["lab"].max_speed == 0.2 and envelopes["sim"].x == (-0.25, 0.25)
    for data, message in [
        ("{not json", "is not valid JSON"),
        ({"lab": {**BOX, "max_speed": 3}}, "robot 'lab'.*max_speed"),
        ({"lab": {**BOX, "colour": "red"}}, r"unknown key\(s\) \['colour'\]"),
        ({"lba": BOX}, r"envelopes for \['lba'\], which are not configured robots \(sim, lab"),
        ([BOX], "must hold a JSON object"),
    ]:
        env["CAPSTAN_ENVELOPE"] = envelope_file(tmp_path, data)
        with pytest.raises(ConfigError, match="CAPSTAN_ENVELOPE: .*" + message):
            Settings.from_env(env)
    env["CAPSTAN_ENVELOPE"] = str(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="CAPSTAN_ENVELOPE: cannot read envelope file"):
        Settings.from_env(env)


def test_serve_refuses_to_start_on_a_bad_envelope_file(tmp_path, monkeypatch, capsys):
    from capstan.service.cli import main

    monkeypatch.setenv("CAPSTAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAPSTAN_ENVELOPE", str(tmp_path / "missing.json"))
    assert main(["serve", "--no-warm-up"]) == 2
    assert "CAPSTAN_ENVELOPE: cannot read envelope file" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_a_service_built_from_bad_settings_refuses_too(tmp_path):
    from capstan.llm.scripted import ScriptedProvider
    from capstan.service.service import Service

    settings = Settings(data_dir=tmp_path / "data", envelope=envelope_file(tmp_path, {"sim": {"x": [1, 0]}}))
    with pytest.raises(ConfigError, match="CAPSTAN_ENVELOPE"):
        Service(settings, llm=ScriptedProvider([]), sandbox=object())


def test_agent_cli_refuses_a_bad_envelope_file(tmp_path, capsys):
    from capstan.service.cli import main

    assert main(["robot-agent", "--envelope", envelope_file(tmp_path, {"x": [0, 1]})]) == 2
    err = capsys.readouterr().err
    assert "--envelope: envelope file" in err and "missing key(s) ['y']" in err


# ---------------------------------------------------------------------------- wiring


def test_every_real_robot_is_wrapped_and_the_sim_only_when_named(robot_agent):
    from capstan.service.robots import make_backend

    a = robot_agent()
    remotes = {"lab": a.url}
    lab = make_backend("lab", {}, remotes)
    try:
        assert isinstance(lab, EnvelopedBackend) and isinstance(lab.inner, RemoteRobot)
        assert lab.envelope == Envelope.default_for(lab.workspace())
    finally:
        lab.close()
    mine = Envelope.from_dict({**BOX, "max_motions_per_run": 5})
    lab = make_backend("lab", {}, remotes, envelopes={"lab": mine})
    try:
        assert isinstance(lab, EnvelopedBackend) and lab.envelope is mine
    finally:
        lab.close()
    sim = make_backend("sim", SCENE, remotes)
    try:
        assert not isinstance(sim, EnvelopedBackend)
    finally:
        sim.close()
    sim = make_backend("sim", SCENE, remotes, envelopes={"sim": mine})
    try:
        assert isinstance(sim, EnvelopedBackend) and sim.envelope is mine and sim.supports_snapshots
    finally:
        sim.close()


def test_without_a_file_the_service_takes_the_envelope_the_agent_enforces(robot_agent):
    """So the service (and the twin) refuse what the agent would refuse halfway through a program."""
    from capstan.service.robot_agent import sim_agent_app
    from capstan.service.robots import make_backend

    envelope = Envelope.from_dict({**BOX, "keep_out": [TRAY.to_dict()], "max_motions_per_run": 9})
    a = robot_agent(app=sim_agent_app(SCENE, envelope=envelope))
    lab = make_backend("lab", {}, {"lab": a.url})
    try:
        assert isinstance(lab, EnvelopedBackend) and lab.envelope == envelope
        before = frozen(a.app.state.world)
        with pytest.raises(EnvelopeError, match="keep-out zone 'tray'"):
            lab.check_path([[0.15, 0.6, 0.05]])
        assert frozen(a.app.state.world) == before
    finally:
        lab.close()


# ---------------------------------------------------------------------------- the agent's own envelope


def test_the_agent_refuses_a_program_aimed_at_a_keep_out_zone(robot_agent):
    from capstan.sandbox import Sandbox
    from capstan.service.assembly import build_policy_api
    from capstan.service.robot_agent import sim_agent_app

    envelope = Envelope.from_dict({**BOX, "keep_out": [TRAY.to_dict()]})
    a = robot_agent(app=sim_agent_app(SCENE, envelope=envelope))
    world = a.app.state.world
    info = httpx.get(a.url + "/v1/robot").json()
    assert info["envelope"]["keep_out"] == [TRAY.to_dict()]
    robot = RemoteRobot(a.url, name="lab")  # no envelope on this side: the agent's must hold
    try:
        api = build_policy_api(robot)
        before = frozen(world)
        with Sandbox(pool_size=1) as sb:
            res = sb.run(
                "put_first_on_second('red block', [0.15, 0.6])", host_functions=api.functions(), timeout_s=60
            )
        assert res.error is not None and res.error.kind == "primitive" and res.error.line == 1
        assert res.error.message.startswith("EnvelopeError: ") and "keep-out zone 'tray'" in res.error.message
        with pytest.raises(EnvelopeError, match="keep-out zone 'tray'"):
            api.put_first_on_second("red block", [0.15, 0.6])
        with pytest.raises(EnvelopeError, match="keep-out zone 'tray'"):
            robot.move_ee([0.15, 0.6, 0.05])  # a direct motion: refused by the agent itself
        assert frozen(world) == before  # nothing moved on the agent's side
        r = httpx.post(a.url + "/v1/robot/check_path", json={"points": [[0, 0.5, 99.0]]})
        assert r.status_code == 422
    finally:
        robot.close()


def test_the_agents_budget_restarts_with_begin_run(robot_agent):
    from capstan.service.robot_agent import sim_agent_app

    a = robot_agent(app=sim_agent_app(SCENE, envelope=Envelope.from_dict({**BOX, "max_motions_per_run": 2})))
    robot = RemoteRobot(a.url)
    try:
        robot.set_gripper(True)
        robot.set_gripper(False)
        with pytest.raises(EnvelopeError, match="max_motions_per_run = 2"):
            robot.set_gripper(True)
        robot.begin_run()
        robot.set_gripper(True)
        assert a.app.state.agent.backend.motions == 1
    finally:
        robot.close()


def test_each_service_run_starts_the_budgets_on_both_sides(robot_agent, make_service, client_for, tmp_path):
    a = robot_agent()
    path = envelope_file(tmp_path, {"lab": {**BOX, "max_motions_per_run": 6}})
    client = client_for(make_service(robots=f"lab={a.url}", envelope=path))
    sid = client.post("/v1/sessions", json={"robot": "lab"}).json()["id"]
    # six motions; the say() keeps its twin rehearsal from judging it a program with no effect
    six = "for _ in range(3):\n    close_gripper()\n    open_gripper()\nsay('exercised')\n"
    for _ in range(2):  # within the budget each time: every run starts it again
        t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": six}).json()
        assert t["status"] == "succeeded", t["error"]
    assert a.app.state.agent.backend.motions == 6  # the agent's count restarted with the run too
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": six + "close_gripper()"}).json()
    assert t["status"] == "failed" and t["error"]["kind"] == "primitive" and t["error"]["line"] == 5
    assert "EnvelopeError: motion limit" in t["error"]["message"]
    assert "max_motions_per_run = 6" in t["error"]["message"]
