"""A real robot's programs are rehearsed on its simulated twin before they move it: the "real"
robot is a robot agent serving a PyBullet world on loopback (uvicorn in a thread), driven by the
service through CAPSTAN_ROBOTS; the model is the scripted provider."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.service.test_service_api import fenced
from tests.service.test_service_remote_robot import PUT, in_bowl

# carries the red block past the right edge of the workspace and lets go there
DROP_OUTSIDE = "pick('red block')\nmove_gripper_to([0.29, 0.5, 0.1])\nopen_gripper()"
# moves, then raises
RAISES = "move_gripper_to([0.0, 0.5, 0.2])\nheights = [0.2]\nmove_gripper_to([0.0, 0.5, heights[3]])"


def snapshot_of(agent) -> dict:
    """Where the agent's own world has its gripper and objects."""
    world = agent.app.state.world
    return {
        "ee": world.ee_position().tolist(),
        **{n: o["position"] for n, o in world.state()["objects"].items()},
        "time_s": world.time_s,
    }


def assert_never_moved(agent, before: dict) -> None:
    now = snapshot_of(agent)
    assert now["time_s"] == before["time_s"]  # not one physics step on the robot
    for key, value in before.items():
        assert np.allclose(now[key], value, atol=1e-9), key


def lab_session(robot_agent, make_service, client_for, replies=(), **settings):
    agent = robot_agent()
    client = client_for(make_service(replies=replies, robots=f"lab={agent.url}", **settings))
    r = client.post("/v1/sessions", json={"robot": "lab"})
    assert r.status_code == 201, r.text
    return agent, client, r.json()["id"]


def candidates(trace: dict) -> list[dict]:
    return [c for a in trace["attempts"] for c in a.get("candidates", [])]


@pytest.mark.parametrize("program", [DROP_OUTSIDE, RAISES], ids=["drops-outside", "raises"])
def test_a_bad_command_is_stopped_on_the_twin_and_the_robot_never_moves(
    robot_agent, make_service, client_for, program
):
    # three attempts: the first, then two repairs, each asked twice (the same program again is
    # sent back once for a different one)
    replies = [fenced(program)] * 5
    agent, client, sid = lab_session(robot_agent, make_service, client_for, replies, candidates=1)
    before = snapshot_of(agent)
    t = client.post(f"/v1/sessions/{sid}/commands?wait=true", json={"text": "do it"}).json()
    assert t["status"] == "failed"
    tried = candidates(t)
    assert len(tried) == 3 and all(c["twin"] and c["rejected"] for c in tried)  # every attempt refused
    if program == DROP_OUTSIDE:  # the twin wears the robot's safety envelope: refused at the move
        assert tried[0]["rejected"] == "primitive"
        assert tried[0]["error"]["message"].startswith("EnvelopeError")
    else:
        assert tried[0]["rejected"] == "policy"
    assert t["primitive_calls"] == []  # the rehearsals' calls stay out of the real run's record
    assert_never_moved(agent, before)


def test_a_good_command_is_rehearsed_on_the_twin_then_runs_and_the_trace_shows_both(
    robot_agent, make_service, client_for
):
    agent, client, sid = lab_session(robot_agent, make_service, client_for, [fenced(PUT)], media=True)
    t = client.post(
        f"/v1/sessions/{sid}/commands?wait=true", json={"text": "red block into the blue bowl"}
    ).json()
    assert t["status"] == "succeeded", t["error"]
    assert in_bowl(agent.app.state.world.state(), "red block", "blue bowl")  # it ran for real
    (dry,) = candidates(t)
    assert dry["twin"] is True and dry["rejected"] is None and dry["seconds"] > 0
    assert "frames" not in dry  # the frames became a video, not JSON
    (video,) = t["media"]["rehearsals"]
    assert video["gif"] == f"/v1/runs/{t['id']}/rehearsals/0.gif" == dry["video"]["gif"]
    assert video["attempt"] == 1 and video["index"] == 0 and video["rejected"] is None
    gif = client.get(video["gif"])
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert gif.content[:6] in (b"GIF87a", b"GIF89a")
    mp4 = client.get(video["mp4"])
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    assert t["media"]["gif"] and client.get(t["media"]["gif"]).status_code == 200  # the run's own
    assert client.get(f"/v1/runs/{t['id']}/rehearsals/7.gif").status_code == 404
    # the real run's record holds the real calls only: one put, after the rehearsal
    assert [c["name"] for c in t["primitive_calls"]] == ["put_first_on_second", "say"]
    events = client.get(f"/v1/runs/{t['id']}/events").text
    assert events.index("event: candidate") < events.index("event: primitive_call")


def test_a_hand_written_program_on_a_real_robot_is_rehearsed_too(robot_agent, make_service, client_for):
    agent, client, sid = lab_session(robot_agent, make_service, client_for)
    before = snapshot_of(agent)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": DROP_OUTSIDE}).json()
    assert t["status"] == "failed" and t["error"]["message"].startswith("EnvelopeError")
    assert candidates(t)[0]["twin"] is True
    assert_never_moved(agent, before)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded" and candidates(t)[0]["twin"] is True
    assert in_bowl(agent.app.state.world.state(), "red block", "blue bowl")


def test_dry_run_off_does_not_skip_the_twin_for_a_real_robot(robot_agent, make_service, client_for):
    agent, client, sid = lab_session(robot_agent, make_service, client_for, dry_run=False)
    before = snapshot_of(agent)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": RAISES}).json()
    assert t["status"] == "failed" and t["error"]["kind"] == "policy"
    assert candidates(t)[0]["twin"] is True
    assert_never_moved(agent, before)


def test_only_the_unsafe_setting_lets_a_program_reach_the_robot_unrehearsed(
    robot_agent, make_service, client_for
):
    agent, client, sid = lab_session(
        robot_agent, make_service, client_for, dry_run=False, unsafe_skip_twin=True
    )
    before = snapshot_of(agent)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": RAISES}).json()
    assert t["status"] == "failed" and candidates(t) == []
    ee = agent.app.state.world.ee_position()
    assert math.dist(ee, [0.0, 0.5, 0.2]) < 0.02 and not np.allclose(ee, before["ee"])  # it moved


def test_a_given_engine_must_require_rehearsal_to_drive_a_real_robot(tmp_path, shared_sandbox):
    from capstan.llm.scripted import ScriptedProvider
    from capstan.lmp.engine import Engine
    from capstan.service.config import ConfigError, Settings
    from capstan.service.service import Service

    settings = Settings.from_env({}, data_dir=tmp_path / "data", robots="lab=http://127.0.0.1:9", media=False)
    careless = Engine(ScriptedProvider([]), shared_sandbox)
    with pytest.raises(ConfigError, match="require_rehearsal=True"):
        Service(settings, engine=careless)
    Service(settings, engine=Engine(ScriptedProvider([]), shared_sandbox, require_rehearsal=True)).close()
