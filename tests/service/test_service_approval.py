"""Operator approval (CAPSTAN_APPROVAL): a program for a robot that requires it waits
`awaiting_approval`, holding no run slot, until someone approves or rejects it through /v1; a
rejection, a timeout or an e-stop means it never moves the arm. The robot is a real robot agent
(uvicorn on loopback serving a PyBullet world); the model is a scripted provider."""

from __future__ import annotations

import time

import numpy as np
import pytest

from capstan.service.config import ConfigError, Settings
from tests.service.test_service_api import detail, fenced, in_bowl, new_session, wait_status

PUT = "put_first_on_second('red block', 'blue bowl')\nsay('done')"
FINAL = ("succeeded", "failed", "cancelled")


def agent_world(agent) -> tuple[np.ndarray, dict]:
    """Where the agent's arm and objects really are (its own PyBullet world, not what the service says)."""
    world = agent.app.state.world
    objects = {n: o["position"] for n, o in world.state()["objects"].items()}
    return np.array(world.ee_position()), objects


def unmoved(agent, before: tuple[np.ndarray, dict]) -> bool:
    ee, objects = agent_world(agent)
    return np.allclose(ee, before[0], atol=1e-4) and all(
        np.allclose(objects[n], p, atol=1e-4) for n, p in before[1].items()
    )


@pytest.fixture
def lab(robot_agent, make_service, client_for):
    """(agent, service, client) with robot 'lab' requiring approval; more service settings by keyword."""

    def start(replies=(), **settings):
        agent = robot_agent()
        settings.setdefault("approval", "required")
        svc = make_service(replies=replies, robots=f"lab={agent.url}", **settings)
        return agent, svc, client_for(svc)

    return start


def lab_session(client) -> str:
    r = client.post("/v1/sessions", json={"robot": "lab"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_rejected_program_never_moves_the_arm_and_the_trace_says_who_and_when(lab):
    agent, svc, client = lab(replies=[fenced(PUT)])  # one reply: a rejection asks the model nothing more
    sid = lab_session(client)
    before = agent_world(agent)
    run_id = client.post(
        f"/v1/sessions/{sid}/commands", json={"text": "put the red block in the bowl"}
    ).json()["run_id"]
    t = wait_status(client, run_id, ("awaiting_approval", *FINAL))
    assert t["status"] == "awaiting_approval"
    assert "put_first_on_second('red block', 'blue bowl')" in t["approval"]["code"]
    assert t["approval"]["decision"] is None and t["approval"]["attempt"] == 1
    assert not t["primitive_calls"]
    t0 = time.time()
    r = client.post(
        f"/v1/runs/{run_id}/reject", json={"attempt": 1, "by": "alice", "reason": "the bowl is not there"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["approved"] is False and r.json()["by"] == "alice"
    t = wait_status(client, run_id, FINAL)
    assert t["status"] == "failed" and t["error"]["kind"] == "rejected", t["error"]
    assert "alice" in t["error"]["message"]
    decision = t["approval"]["decision"]
    assert decision["approved"] is False and decision["by"] == "alice"
    assert decision["reason"] == "the bowl is not there" and t0 <= decision["at"] <= time.time()
    assert t["attempts"][0]["approval"] == decision and len(t["attempts"]) == 1  # no repair followed
    assert len(t["llm_calls"]) == 1
    assert not [c for c in t["primitive_calls"] if c["name"] == "put_first_on_second"]
    assert unmoved(agent, before)
    kinds = [e["type"] for e in svc.store.events(run_id)]
    assert kinds.index("approval") < kinds.index("decision") < kinds.index("attempt")
    statuses = [e["data"]["status"] for e in svc.store.events(run_id) if e["type"] == "status"]
    assert statuses == ["queued", "running", "awaiting_approval"]
    r = client.post(
        f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "bob"}
    )  # too late: it was decided
    assert r.status_code == 409 and "not awaiting approval" in r.json()["detail"]


def test_an_approved_program_moves_the_arm_and_records_the_approver(lab):
    agent, _svc, client = lab()
    sid = lab_session(client)
    ee0 = agent_world(agent)[0]
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, run_id, ("awaiting_approval",))
    r = client.post(f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "carol"})
    assert r.status_code == 200 and r.json()["approved"] is True and r.json()["run_id"] == run_id
    t = wait_status(client, run_id, FINAL)
    assert t["status"] == "succeeded", t["error"]
    assert t["approval"]["decision"]["by"] == "carol" and t["approval"]["decision"]["approved"] is True
    assert t["approval"]["decision"]["verified"] is False  # no CAPSTAN_OPERATORS: a stated name only
    assert in_bowl(agent.app.state.world.state(), "red block", "blue bowl")  # the robot really moved
    assert not np.allclose(agent_world(agent)[0], ee0, atol=1e-3)
    assert t["said"] == ["done"]


def test_a_decision_names_the_attempt_it_read(lab):
    """The first program fails its rehearsal on the twin, so its repair (attempt 2) is the one put
    to the operator: an answer naming attempt 1 is refused, never taken for the program now waiting."""
    raises = "move_gripper_to([0.0, 0.5, 0.2])\nheights = [0.2]\nmove_gripper_to([0.0, 0.5, heights[3]])"
    agent, _svc, client = lab(replies=[fenced(raises), fenced(PUT)], candidates=1)
    sid = lab_session(client)
    before = agent_world(agent)
    run_id = client.post(f"/v1/sessions/{sid}/commands", json={"text": "red block in the bowl"}).json()[
        "run_id"
    ]
    t = wait_status(client, run_id, ("awaiting_approval", *FINAL))
    assert t["status"] == "awaiting_approval" and t["approval"]["attempt"] == 2
    r = client.post(f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "hana"})
    assert r.status_code == 409 and "awaits approval of attempt 2, not 1" in r.json()["detail"]
    assert client.get(f"/v1/runs/{run_id}").json()["approval"]["decision"] is None  # still waiting
    assert client.post(f"/v1/runs/{run_id}/reject", json={"attempt": 2, "by": "hana"}).status_code == 200
    assert wait_status(client, run_id, FINAL)["error"]["kind"] == "rejected"
    assert unmoved(agent, before)


def test_nobody_deciding_in_time_rejects_the_program(lab):
    agent, _svc, client = lab(approval_timeout_s=0.5)
    sid = lab_session(client)
    before = agent_world(agent)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "failed" and t["error"]["kind"] == "rejected"
    assert t["approval"]["decision"]["by"] == "timeout"
    assert "CAPSTAN_APPROVAL_TIMEOUT_S" in t["approval"]["decision"]["reason"]
    assert unmoved(agent, before)


def test_a_run_awaiting_approval_holds_no_run_slot(lab):
    agent, svc, client = lab(max_concurrent_runs=1, approval_timeout_s=20)  # a regression fails, not hangs
    waiting_session = lab_session(client)
    waiting = client.post(f"/v1/sessions/{waiting_session}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, waiting, ("awaiting_approval",))
    assert svc.runs.counts() == (0, 0)
    # the one slot is free: another session's run (the sim needs no approval) runs to its end meanwhile
    other = new_session(client)
    t = client.post(f"/v1/sessions/{other}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded" and in_bowl(t["state_after"], "red block", "blue bowl")
    assert client.get(f"/v1/runs/{waiting}").json()["status"] == "awaiting_approval"
    # a second waiting run does not block either, and both go on once approved
    second = client.post(f"/v1/sessions/{other}/programs", json={"code": "say('again')"}).json()["run_id"]
    assert wait_status(client, second, FINAL)["status"] == "succeeded"
    assert client.post(f"/v1/runs/{waiting}/approve", json={"attempt": 1, "by": "dave"}).status_code == 200
    assert wait_status(client, waiting, FINAL)["status"] == "succeeded"
    assert in_bowl(agent.app.state.world.state(), "red block", "blue bowl")
    assert svc.runs.counts() == (0, 0)
    assert sum(t.is_alive() for t in svc.runs._threads) == 1  # the stand-in worker retired


def test_an_approved_run_waiting_for_a_slot_is_queued_not_awaiting_approval(lab):
    agent, svc, client = lab(max_concurrent_runs=1, approval_timeout_s=20)
    waiting = client.post(f"/v1/sessions/{lab_session(client)}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, waiting, ("awaiting_approval",))
    other = new_session(client)  # the sim needs no approval: this one takes the only slot and keeps it
    blocker = client.post(f"/v1/sessions/{other}/programs", json={"code": "while True:\n    pass"}).json()
    wait_status(client, blocker["run_id"], ("running",))
    assert client.post(f"/v1/runs/{waiting}/approve", json={"attempt": 1, "by": "dave"}).status_code == 200
    assert wait_status(client, waiting, ("queued", *FINAL))["status"] == "queued"
    client.post(f"/v1/runs/{blocker['run_id']}/cancel")
    assert wait_status(client, waiting, FINAL)["status"] == "succeeded"
    assert svc.runs.counts() == (0, 0)


def test_cancelling_a_waiting_run_rejects_it(lab):
    agent, _svc, client = lab()
    sid = lab_session(client)
    before = agent_world(agent)
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, run_id, ("awaiting_approval",))
    client.post(f"/v1/runs/{run_id}/cancel")
    t = wait_status(client, run_id, FINAL)
    assert t["status"] == "cancelled" and t["approval"]["decision"]["by"] == "e-stop"
    assert unmoved(agent, before)
    assert client.post(f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "eve"}).status_code == 409
    # the e-stop was lifted: the next program runs once approved
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, run_id, ("awaiting_approval",))
    client.post(f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "eve"})
    assert wait_status(client, run_id, FINAL)["status"] == "succeeded"


def test_a_rehearsed_program_waits_with_its_dry_run(make_service, client_for):
    """The sim rehearses a command's program on a snapshot first; `sim=required` puts it to an
    operator too, with that dry run."""
    client = client_for(make_service(replies=[fenced(PUT)], approval="sim=required"))
    sid = new_session(client)
    run_id = client.post(f"/v1/sessions/{sid}/commands", json={"text": "red block in the bowl"}).json()[
        "run_id"
    ]
    t = wait_status(client, run_id, ("awaiting_approval", *FINAL))
    assert t["status"] == "awaiting_approval"
    [dry] = t["approval"]["dry_runs"]
    assert dry["rejected"] is None and dry["motions"] >= 1 and dry["said"] == ["done"]
    assert not t["said"]  # the dry run's speech is not the run's
    client.post(f"/v1/runs/{run_id}/approve", json={"attempt": 1, "by": "frank"})
    t = wait_status(client, run_id, FINAL)
    assert t["status"] == "succeeded" and in_bowl(t["state_after"], "red block", "blue bowl")


def test_approve_and_reject_refuse_what_is_not_waiting(make_service, client_for):
    client = client_for(make_service())  # no approval configured
    sid = new_session(client)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded" and t["approval"] is None
    for verb in ("approve", "reject"):
        r = client.post(f"/v1/runs/{t['id']}/{verb}", json={"attempt": 1, "by": "gina"})
        assert r.status_code == 409 and "succeeded" in r.json()["detail"], r.text
    r = client.post("/v1/runs/nosuchrun/approve", json={"attempt": 1, "by": "gina"})
    assert r.status_code == 404
    for body in (
        {},
        {"attempt": 1, "by": ""},
        {"attempt": 1, "by": "gina", "extra": 1},
        {"attempt": 1, "by": 7},
        {"by": "gina"},  # which program: the attempt is required
        {"attempt": 1, "by": "timeout"},  # the service's own names are reserved
        {"attempt": 1, "by": "e-stop"},
        {"attempt": 1},  # without CAPSTAN_OPERATORS the decider names themselves
    ):
        r = client.post(f"/v1/runs/{t['id']}/approve", json=body)
        assert r.status_code == 422, body
    assert "at least 1 character" in detail(
        client.post(f"/v1/runs/{t['id']}/reject", json={"attempt": 1, "by": ""})
    )


def test_with_operators_only_an_operators_own_token_decides_and_names_them(lab, tmp_path):
    from capstan.service.operators import add_operator

    ops = tmp_path / "operators.json"
    alice = add_operator(ops, "alice")
    add_operator(ops, "bob")
    agent, _svc, client = lab(operators=str(ops))
    sid = lab_session(client)
    before = agent_world(agent)
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": PUT}).json()["run_id"]
    wait_status(client, run_id, ("awaiting_approval",))
    url = f"/v1/runs/{run_id}/approve"
    for headers, body in (
        ({}, {"attempt": 1, "by": "alice"}),  # a name alone proves nothing
        ({"X-Operator-Token": "guess"}, {"attempt": 1}),
        ({"X-Operator-Token": alice}, {"attempt": 1, "by": "bob"}),  # alice's token signing for bob
    ):
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 403, (headers, body, r.text)
    assert "X-Operator-Token" in client.post(url, json={"attempt": 1, "by": "alice"}).json()["detail"]
    assert client.get(f"/v1/runs/{run_id}").json()["approval"]["decision"] is None  # still waiting
    assert unmoved(agent, before)
    other = lab_session(client)  # the robot is another session's run's until it ends
    r = client.post(f"/v1/sessions/{other}/robot/clear-watchdog", headers={"X-Operator-Token": alice})
    assert r.status_code == 409 and "a run is using robot 'lab'" in r.json()["detail"]
    r = client.post(f"/v1/runs/{run_id}/reject", json={"attempt": 1}, headers={"X-Operator-Token": alice})
    assert r.status_code == 200 and r.json()["by"] == "alice" and r.json()["verified"] is True
    t = wait_status(client, run_id, FINAL)
    assert t["error"]["kind"] == "rejected"
    assert t["approval"]["decision"]["by"] == "alice" and t["approval"]["decision"]["verified"] is True
    assert unmoved(agent, before)


def test_operator_files_fail_closed(tmp_path):
    from capstan.service.operators import Operators, add_operator

    reserved = '{"timeout": "sha256:' + "0" * 64 + '"}'
    for text in ("not json", '["alice"]', '{"alice": "plain-token"}', reserved):
        (tmp_path / "ops.json").write_text(text)
        with pytest.raises(ConfigError, match="CAPSTAN_OPERATORS"):
            Settings.from_env({"CAPSTAN_OPERATORS": str(tmp_path / "ops.json")})
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.from_env({"CAPSTAN_OPERATORS": str(tmp_path / "missing.json")})
    token = add_operator(tmp_path / "new.json", "dana")
    assert token not in (tmp_path / "new.json").read_text()  # only its digest is stored
    assert (tmp_path / "new.json").stat().st_mode & 0o077 == 0
    operators = Operators(tmp_path / "new.json")
    assert operators.who(token) == "dana" and operators.who(token + "x") is None
    again = add_operator(tmp_path / "new.json", "dana")  # a new token revokes the old one at once
    assert operators.who(token) is None and operators.who(again) == "dana"
    (tmp_path / "new.json").write_text("{broken")  # a file broken while serving admits nobody
    assert operators.who(again) is None
    (tmp_path / "new.json").write_text("{}")
    with pytest.raises(ConfigError, match="names no operator"):
        Settings.from_env({"CAPSTAN_OPERATORS": str(tmp_path / "new.json")})


def test_approval_settings_name_known_robots_and_values():
    lab = {"robots": "lab=http://127.0.0.1:1,arm2=http://127.0.0.1:2"}
    s = Settings.from_env({}, **lab)
    assert not s.approval_required("lab") and not s.approval_required("sim")
    s = Settings.from_env({"CAPSTAN_APPROVAL": "required"}, **lab)
    assert s.approval_required("lab") and s.approval_required("arm2") and not s.approval_required("sim")
    s = Settings.from_env({"CAPSTAN_APPROVAL": "lab=required, arm2=none"}, **lab)
    assert s.approval_required("lab") and not s.approval_required("arm2")
    assert Settings.from_env({"CAPSTAN_APPROVAL_TIMEOUT_S": "12.5"}).approval_timeout_s == 12.5
    for bad, why in (
        ("lba=required", "not one of sim, lab, arm2"),
        ("lab=maybe", "is not 'name=required'"),
        ("always", "is not 'name=required'"),
    ):
        with pytest.raises(ConfigError, match=why):
            Settings.from_env({"CAPSTAN_APPROVAL": bad}, **lab)
    with pytest.raises(ConfigError, match="CAPSTAN_APPROVAL_TIMEOUT_S"):
        Settings.from_env({"CAPSTAN_APPROVAL_TIMEOUT_S": "0"})


def test_a_run_left_awaiting_approval_by_a_stopped_service_is_marked_interrupted(tmp_path):
    from capstan.service.store import open_store

    store = open_store(Settings.from_env({}, data_dir=tmp_path))
    try:
        store.create_run("r1", "s1", "program", "awaiting_approval", {"code": PUT})
        assert store.mark_unfinished("interrupted") == ["r1"]
        assert store.get_run("r1")["status"] == "interrupted"
    finally:
        store.close()


def test_an_operator_lifts_a_watchdog_stop_through_the_service(lab, tmp_path):
    """A lapsed heartbeat (here a second client that stops beating) latches the agent's stop; the
    service's session route lifts it on an operator's word, and refuses what the robot cannot do."""
    import httpx

    from capstan.service.operators import add_operator

    ops = tmp_path / "operators.json"
    token = add_operator(ops, "ines")
    agent, _svc, client = lab(approval="none", operators=str(ops))
    sid = lab_session(client)
    watchdog = agent.url + "/v1/robot/watchdog"
    httpx.post(agent.url + "/v1/robot/heartbeat", json={"client": "gone"})
    deadline = time.monotonic() + 10
    while not httpx.get(watchdog).json()["tripped"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(watchdog).json()["tripped"]
    url = f"/v1/sessions/{sid}/robot/clear-watchdog"
    assert client.post(url, json={"by": "ines"}).status_code == 403  # a name alone is not an operator
    assert httpx.get(watchdog).json()["tripped"]
    r = client.post(url, headers={"X-Operator-Token": token})
    assert r.status_code == 200, r.text
    assert (r.json()["by"], r.json()["action"]) == ("ines", "clear-watchdog")
    assert not httpx.get(watchdog).json()["tripped"]
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded", t["error"]  # it moves again
    r = client.post(f"/v1/sessions/{sid}/robot/recover", headers={"X-Operator-Token": token})
    assert r.status_code == 409 and "has no recover" in r.json()["detail"]  # a PyBullet agent has none
    sim = new_session(client)
    r = client.post(f"/v1/sessions/{sim}/robot/clear-watchdog", headers={"X-Operator-Token": token})
    assert r.status_code == 409 and "has no clear-watchdog" in r.json()["detail"]
    r = client.post(f"/v1/sessions/{sid}/robot/fly", headers={"X-Operator-Token": token})
    assert r.status_code == 422
    _agent, _svc, plain = lab(approval="none")  # a service with no operators: nobody may
    r = plain.post(f"/v1/sessions/{lab_session(plain)}/robot/clear-watchdog", json={"by": "ines"})
    assert r.status_code == 403 and "CAPSTAN_OPERATORS" in r.json()["detail"]
