"""Declaring what is on a real robot's table through the service: the robot is a Franka agent on
franky-sim (MuJoCo, the libfranka protocol) on loopback, which has no perception of its own."""

from __future__ import annotations

import pytest

pytest.importorskip("franky", reason="needs: pip install 'capstan[franka]'")

pytestmark = pytest.mark.slow

BLOCKS = {"red block": {"color": "red", "position": [0.05, 0.5]}}


@pytest.fixture(scope="module")
def franky_sim():
    from capstan.franka import FrankySim

    with FrankySim(BLOCKS) as sim:
        yield sim


@pytest.fixture(scope="module")
def franka(franky_sim):
    """One connection per module: franky-sim serves one libfranka client at a time."""
    from capstan.franka import FrankaBackend

    backend = FrankaBackend.connect(franky_sim.hostname, max_speed=0.5)
    yield backend
    backend.close()


@pytest.fixture
def franka_client(franka, robot_agent, make_service, client_for):
    from capstan.service.robot_agent import make_agent_app

    agent = robot_agent(app=make_agent_app(franka, robot="franka-sim"))
    return client_for(make_service(robots=f"arm={agent.url}"))


def objects_of(session: dict) -> dict:
    return {n: [round(v, 3) for v in o["position"][:2]] for n, o in session["state"]["objects"].items()}


def test_a_session_on_a_real_robot_takes_the_declared_objects_and_a_new_declaration(franka_client):
    client = franka_client
    declared = {"red block": {"position": [0.05, 0.5]}, "blue bowl": {"position": [-0.1, 0.45]}}
    r = client.post("/v1/sessions", json={"robot": "arm", "objects": declared})
    assert r.status_code == 201, r.text
    session = r.json()
    assert objects_of(session) == {"red block": [0.05, 0.5], "blue bowl": [-0.1, 0.45]}
    assert session["state"]["objects"]["blue bowl"]["kind"] == "bowl"  # read from the name

    moved = {"red block": {"kind": "block", "color": "red", "position": [0.0, 0.55, 0.02]}}
    r = client.put(f"/v1/sessions/{session['id']}/objects", json={"objects": moved})
    assert r.status_code == 200, r.text
    assert objects_of(r.json()) == {"red block": [0.0, 0.55]}  # replaced, not merged
    assert objects_of(client.get(f"/v1/sessions/{session['id']}").json()) == {"red block": [0.0, 0.55]}


def test_a_bad_declaration_is_refused_whole_and_names_what_is_wrong(franka_client):
    client = franka_client
    sid = client.post("/v1/sessions", json={"robot": "arm", "objects": BLOCKS}).json()["id"]
    outside = {"red block": {"position": [0.05, 0.5]}, "green block": {"position": [2.0, 0.5]}}
    r = client.put(f"/v1/sessions/{sid}/objects", json={"objects": outside})
    assert r.status_code == 422
    assert "green block" in r.text
    assert objects_of(client.get(f"/v1/sessions/{sid}").json()) == {"red block": [0.05, 0.5]}  # unchanged

    r = client.put(f"/v1/sessions/{sid}/objects", json={"objects": {"red block": {"position": [0.1]}}})
    assert r.status_code == 422  # the schema: a position is [x, y] or [x, y, z]

    before = len(client.get("/v1/sessions").json()["sessions"])
    r = client.post("/v1/sessions", json={"robot": "arm", "objects": outside})
    assert r.status_code == 422 and "green block" in r.text
    assert len(client.get("/v1/sessions").json()["sessions"]) == before  # no half-made session kept


def test_objects_are_refused_for_robots_that_see_their_own(make_service, client_for, robot_agent):
    agent = robot_agent()  # a PyBullet world: it knows where its objects are
    client = client_for(make_service(robots=f"lab={agent.url}"))
    r = client.post("/v1/sessions", json={"robot": "lab", "objects": BLOCKS})
    assert r.status_code == 422 and "takes no declared objects" in r.text
    sid = client.post("/v1/sessions", json={"robot": "lab"}).json()["id"]
    r = client.put(f"/v1/sessions/{sid}/objects", json={"objects": BLOCKS})
    assert r.status_code == 422 and "takes no declared objects" in r.text
    r = client.post("/v1/sessions", json={"objects": BLOCKS})  # the sim
    assert r.status_code == 422 and "'objects' are for a real robot" in r.text
