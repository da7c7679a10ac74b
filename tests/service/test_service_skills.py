"""A session's skills over HTTP: learned from a run, offered to later prompts, kept across a
restart, listed, exported, imported (with the checks generated code passes) and deleted."""

from __future__ import annotations

from tests.service.test_service_api import LONG, fenced, in_bowl, new_session, wait_status

HELPER = (
    'def drop_in_bowl(name):\n    """Put a block in the blue bowl."""\n'
    "    put_first_on_second(name, 'blue bowl')"
)
CALLS_HELPER = "drop_in_bowl('red block')"


def learn_a_skill(make_service, client_for):
    svc = make_service(replies=[fenced(CALLS_HELPER), fenced(HELPER)])
    client = client_for(svc)
    sid = new_session(client)
    t = client.post(
        f"/v1/sessions/{sid}/commands?wait=true", json={"text": "red block into the blue bowl"}
    ).json()
    assert t["status"] == "succeeded", t["error"]
    return svc, client, sid


def test_a_helper_that_ran_is_a_skill_that_survives_a_restart_and_is_offered_again(make_service, client_for):
    svc, client, sid = learn_a_skill(make_service, client_for)
    skills = client.get(f"/v1/sessions/{sid}/skills").json()["skills"]
    assert [(s["name"], s["signature"], s["doc"]) for s in skills] == [
        ("drop_in_bowl", "drop_in_bowl(name)", "Put a block in the blue bowl.")
    ]
    svc.close()

    # same data directory: a restarted server; the next command calls the skill with no fgen call
    again = make_service(replies=[fenced("reset_note = 1\n" + CALLS_HELPER)])
    client = client_for(again)
    assert [s["name"] for s in client.get(f"/v1/sessions/{sid}/skills").json()["skills"]] == ["drop_in_bowl"]
    client.post(
        f"/v1/sessions/{sid}/reset", json={"scene": {"objects": ["red block", "blue bowl"], "seed": 7}}
    )
    t = client.post(f"/v1/sessions/{sid}/commands?wait=true", json={"text": "and once more"}).json()
    assert t["status"] == "succeeded", t["error"]
    assert [c["lmp"] for c in t["llm_calls"]] == ["tabletop_ui"]
    prompt = again.llm.requests[0].messages[-1].content
    assert "drop_in_bowl(name) - Put a block in the blue bowl." in prompt
    assert in_bowl(t["state_after"], "red block", "blue bowl")


def test_export_then_import_into_another_session(make_service, client_for):
    _, client, sid = learn_a_skill(make_service, client_for)
    export = client.get(f"/v1/sessions/{sid}/skills/export").json()
    assert export["version"] == 1 and export["skills"][0]["name"] == "drop_in_bowl"
    other = new_session(client)
    assert client.get(f"/v1/sessions/{other}/skills").json()["skills"] == []  # skills are per session
    r = client.post(f"/v1/sessions/{other}/skills", json=export)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == ["drop_in_bowl"]
    assert client.delete(f"/v1/sessions/{other}/skills/drop_in_bowl").status_code == 204
    assert client.delete(f"/v1/sessions/{other}/skills/drop_in_bowl").status_code == 404
    assert client.get(f"/v1/sessions/{other}/skills").json()["skills"] == []


def test_imports_pass_the_checks_generated_code_passes_and_are_all_or_nothing(make_service, client_for):
    svc = make_service(max_code_bytes=400)
    client = client_for(svc)
    sid = new_session(client)
    good = {"name": "go", "code": "def go(name):\n    put_first_on_second(name, 'blue bowl')\n"}
    refused = {
        "a stub": {"name": "later", "code": "def later(x):\n    pass\n"},
        "an import the sandbox refuses": {
            "name": "peek",
            "code": "def peek():\n    import os\n    return os.getcwd()\n",
        },
        "a dunder escape": {"name": "up", "code": "def up():\n    return ().__class__.__bases__\n"},
        "not its own function": {"name": "named", "code": "def other():\n    return 1\n"},
        "too long": {"name": "big", "code": "def big():\n    return " + "1 + " * 200 + "1\n"},
        "a primitive's name": {"name": "say", "code": "def say(text):\n    return text\n"},
        "a nested LMP's name": {"name": "parse_position", "code": "def parse_position(d):\n    return d\n"},
        "a builtin's name": {"name": "len", "code": "def len(x):\n    return 0\n"},
        "twice in one import": {"name": "go", "code": "def go(name):\n    say(name)\n"},
    }
    for why, bad in refused.items():
        r = client.post(f"/v1/sessions/{sid}/skills", json={"version": 1, "skills": [good, bad]})
        assert r.status_code == 422, (why, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, list) and bad["name"] in detail[0]["msg"], (why, detail)
        assert client.get(f"/v1/sessions/{sid}/skills").json()["skills"] == [], why  # nothing was added
    assert client.post(f"/v1/sessions/{sid}/skills", json={"version": 2, "skills": []}).status_code == 422
    typo = {"version": 1, "skils": [good], "skills": []}  # a misspelt key is refused, not ignored
    assert client.post(f"/v1/sessions/{sid}/skills", json=typo).status_code == 422
    assert client.post(f"/v1/sessions/{sid}/skills", json={"version": 1, "skills": [good]}).status_code == 200
    assert client.get("/v1/sessions/nope/skills").status_code == 404


def test_a_saved_skill_a_restart_cannot_take_back_is_said_and_kept_aside(make_service, client_for, caplog):
    """A saved skill that no longer passes the checks (edited, or refused by a newer version) is
    not offered, is named in the log, and stays in the saved session for later saves too."""
    from capstan.service.store import open_store

    svc, client, sid = learn_a_skill(make_service, client_for)
    svc.close()
    store = open_store(svc.settings)
    (doc,) = [d for d in store.live_sessions() if d["id"] == sid]
    doc["skills"][0]["code"] = doc["skills"][0]["code"].replace(
        "def drop_in_bowl(name):", "def drop_in_bowl(name)"
    )
    store.save_session(sid, doc)
    store.close()

    with caplog.at_level("WARNING", logger="capstan.service"):
        again = make_service(replies=[])
    assert "saved skill 'drop_in_bowl' not restored" in caplog.text
    client = client_for(again)
    assert client.get(f"/v1/sessions/{sid}/skills").json()["skills"] == []
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('still here')"}).json()
    assert t["status"] == "succeeded", t["error"]  # the session is saved again after its run
    again.close()
    store = open_store(again.settings)
    (doc,) = [d for d in store.live_sessions() if d["id"] == sid]
    store.close()
    (kept,) = doc["skills_unreadable"]
    assert kept["skill"]["name"] == "drop_in_bowl" and "SkillError" in kept["error"]


def test_skills_do_not_change_under_a_run(make_service, client_for):
    """A run reads the skills into its program and adds the ones it wrote when it ends: an import
    or a deletion meanwhile is refused (409), as a reset is."""
    client = client_for(make_service())
    sid = new_session(client)
    good = {"name": "go", "code": "def go(name):\n    put_first_on_second(name, 'blue bowl')\n"}
    assert client.post(f"/v1/sessions/{sid}/skills", json={"version": 1, "skills": [good]}).status_code == 200
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
    wait_status(client, run_id, ("running",))
    other = {"name": "went", "code": "def went(name):\n    put_first_on_second(name, 'red bowl')\n"}
    r = client.post(f"/v1/sessions/{sid}/skills", json={"version": 1, "skills": [other]})
    assert r.status_code == 409 and "running a program" in r.json()["detail"]
    assert client.delete(f"/v1/sessions/{sid}/skills/go").status_code == 409
    client.post(f"/v1/runs/{run_id}/cancel")
    wait_status(client, run_id, ("cancelled",))
    assert [s["name"] for s in client.get(f"/v1/sessions/{sid}/skills").json()["skills"]] == ["go"]
    assert client.delete(f"/v1/sessions/{sid}/skills/go").status_code == 204
