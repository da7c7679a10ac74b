"""The scene state model (primitives.scene_state) and the backends' states stay the same shape:
every key a backend sends is declared, every declared key is sent, every value has its JSON type."""

from __future__ import annotations

import copy
import json
import time

import httpx
import pytest

from capstan.primitives.errors import RobotUnavailableError
from capstan.primitives.fake import FakeBackend
from capstan.primitives.remote import PROTOCOL_VERSION, RemoteRobot
from capstan.primitives.scene_state import state_problems


def fake() -> FakeBackend:
    return FakeBackend({"red block": [0.0, 0.5], "blue bowl": [0.1, 0.45]})


def test_the_fake_backends_state_is_the_model_while_idle_and_while_holding():
    b = fake()
    assert state_problems(b.state()) == []
    b.move_ee([0.0, 0.5, 0.02])
    b.set_gripper(True)
    held = b.state()
    assert held["gripper"]["holding"] == "red block"
    assert state_problems(held) == []


def test_drift_from_the_model_is_named():
    good = fake().state()
    assert state_problems(good) == []
    bad: dict = copy.deepcopy(dict(good))
    bad["extra"] = 1
    del bad["gripper"]["open"]
    bad["objects"]["red block"]["position"] = ["x", 0.5, 0.02]
    bad["seed"] = True
    bad["gripper"]["holding"] = 3
    assert sorted(state_problems(bad)) == [
        "state has the undeclared key 'extra'",
        "state['gripper'] lacks 'open'",
        "state['gripper']['holding'] is int, not str or null",
        "state['objects']['red block']['position'][0] is str, not float",
        "state['seed'] is bool, not int",
    ]
    assert "state has the undeclared key 'extra'" not in state_problems(bad, undeclared=False)
    assert state_problems([]) == ["state is list, not an object"]


def remote_sending(state: object) -> RemoteRobot:
    workspace = {"x": [-0.3, 0.3], "y": [0.2, 0.8], "table_z": 0.0}
    info = {"protocol": PROTOCOL_VERSION, "robot": "lab", "workspace": workspace}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=info if request.url.path == "/v1/robot" else state)

    return RemoteRobot("http://lab", name="lab", transport=httpx.MockTransport(answer))


def test_a_remote_robots_state_must_fit_the_model_and_may_carry_more():
    state = fake().state()
    assert remote_sending(state).state() == state
    more = {**state, "battery": 0.9}
    assert remote_sending(more).state() == more  # tolerated; the service's schemas leave it out
    broken: dict = copy.deepcopy(dict(state))
    del broken["workspace"]
    with pytest.raises(RobotUnavailableError, match=r"outside the scene contract.*state lacks 'workspace'"):
        remote_sending(broken).state()
    with pytest.raises(RobotUnavailableError, match="lacks 'objects'"):
        remote_sending({"robot": "lab"}).state()


class _Drip(httpx.SyncByteStream):
    """An answer that never ends: a byte at a time, each soon enough to keep a read alive."""

    def __iter__(self):
        while True:
            time.sleep(0.05)
            yield b" "


def test_an_agent_that_answers_too_slowly_or_too_much_is_unavailable(monkeypatch):
    """A stuck or hostile agent cannot hold a service thread past the call's time, nor fill its
    memory: both are RobotUnavailableError."""
    from capstan.primitives import remote

    workspace = {"x": [-0.3, 0.3], "y": [0.2, 0.8], "table_z": 0.0}
    info = {"protocol": PROTOCOL_VERSION, "robot": "lab", "workspace": workspace}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/robot":
            return httpx.Response(200, json=info)
        if request.url.path == "/v1/robot/state":
            return httpx.Response(200, stream=_Drip())
        return httpx.Response(200, content=b" " * 5000 + b"{}")

    monkeypatch.setattr(remote, "QUICK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(remote, "ANSWER_GRACE_S", 0.2)
    monkeypatch.setattr(remote, "MAX_ANSWER_BYTES", 4000)
    robot = RemoteRobot("http://lab", name="lab", transport=httpx.MockTransport(answer))
    started = time.monotonic()
    with pytest.raises(RobotUnavailableError, match="in time"):
        robot.state()
    assert time.monotonic() - started < 5
    with pytest.raises(RobotUnavailableError, match="more than 4000 bytes"):
        robot.ee_position()


def _agent_answering(info_workspace: dict, answers: dict) -> RemoteRobot:
    info = {"protocol": PROTOCOL_VERSION, "robot": "lab", "workspace": info_workspace}

    def answer(request: httpx.Request) -> httpx.Response:
        # json.dumps writes NaN and Infinity, as a careless agent would; httpx's json= refuses them
        body = info if request.url.path == "/v1/robot" else answers.get(request.url.path, {})
        return httpx.Response(200, content=json.dumps(body).encode())

    return RemoteRobot("http://lab", name="lab", transport=httpx.MockTransport(answer))


def test_answers_that_do_not_say_what_they_must_are_not_read_as_yes():
    """An agent's silence on reachability is not a yes, and impossible numbers are not used."""
    workspace = {"x": [-0.3, 0.3], "y": [0.2, 0.8], "table_z": 0.0}
    robot = _agent_answering(workspace, {"/v1/robot/gripper": {"open": True, "width": float("nan")}})
    with pytest.raises(RobotUnavailableError, match="can_reach"):
        robot.can_reach([0.0, 0.5, 0.2])
    with pytest.raises(RobotUnavailableError, match="gripper width"):
        robot.gripper_state()
    with pytest.raises(RobotUnavailableError, match="impossible workspace"):
        _agent_answering({"x": [float("nan"), float("inf")], "y": [0.2, 0.8], "table_z": 0.0}, {})
