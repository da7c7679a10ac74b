"""The HTTP API over the real sim, primitives, sandbox and engine; the LLM is a scripted provider."""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from capstan.llm.base import ProviderUnavailableError

SCENE = {"objects": ["red block", "blue bowl"], "seed": 7}
PUT = "put_first_on_second('red block', 'blue bowl')\nsay('the red block is in the blue bowl')"
LONG = "while True:\n    wait(1)"


def fenced(code: str) -> str:
    """A model answer holding `code` in a Python fence, as the real model writes it."""
    return f"```python\n{code.strip()}\n```"


def in_bowl(state: dict, block: str, bowl: str) -> bool:
    b, w = state["objects"][block]["position"], state["objects"][bowl]["position"]
    return math.dist(b[:2], w[:2]) < 0.05 and b[2] < 0.08


def detail(r) -> str:
    """A 422's messages: every 422 has FastAPI's validation-error shape, a list of {loc, msg, type}."""
    body = r.json()["detail"]
    assert isinstance(body, list) and all({"loc", "msg", "type"} <= set(d) for d in body), body
    return "; ".join(d["msg"] for d in body)


def new_session(client, scene=SCENE) -> str:
    r = client.post("/v1/sessions", json={"robot": "sim", "scene": scene})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def events_of(client, run_id: str) -> list[dict]:
    with client.stream("GET", f"/v1/runs/{run_id}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        body = "".join(s.iter_text())
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def wait_status(client, run_id: str, statuses, timeout=30.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = client.get(f"/v1/runs/{run_id}").json()
        if t["status"] in statuses:
            return t
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {t['status']}")


def test_session_lifecycle(make_service, client_for):
    client = client_for(make_service())
    r = client.post("/v1/sessions", json={"scene": SCENE})
    assert r.status_code == 201
    s = r.json()
    assert set(s["state"]["objects"]) == {"red block", "blue bowl"}
    assert {"workspace", "named_positions", "gripper", "robot", "seed", "time_s"} <= set(s["state"])
    sid = s["id"]
    png = client.get(f"/v1/sessions/{sid}/frame.png?view=angled")
    assert (
        png.status_code == 200
        and png.headers["content-type"] == "image/png"
        and png.content[:4] == b"\x89PNG"
    )
    assert client.get(f"/v1/sessions/{sid}/frame.png?view=sideways").status_code == 422
    before = client.get(f"/v1/sessions/{sid}/state").json()["objects"]["red block"]["position"]
    r = client.post(f"/v1/sessions/{sid}/reset", json={"seed": 8})
    assert r.status_code == 200 and r.json()["state"]["seed"] == 8
    assert r.json()["state"]["objects"]["red block"]["position"] != before
    r = client.post(f"/v1/sessions/{sid}/reset", json={"scene": {"blocks": 2, "bowls": 1, "seed": 3}})
    assert len(r.json()["state"]["objects"]) == 3
    assert [x["id"] for x in client.get("/v1/sessions").json()["sessions"]] == [sid]
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    r = client.post("/v1/sessions")  # no body: the default scene
    assert r.status_code == 201 and len(r.json()["state"]["objects"]) == 6
    assert client.get(f"/v1/sessions/{sid}/state").status_code == 404


def test_bad_input_is_refused_with_reasons(make_service, client_for):
    client = client_for(make_service(max_scene_objects=4, max_command_chars=50, max_code_bytes=100))
    r = client.post("/v1/sessions", json={"robot": "ur5", "scene": SCENE})
    assert r.status_code == 422 and "unknown robot" in detail(r)
    r = client.post("/v1/sessions", json={"scene": {"objects": ["mauve block"]}})
    assert r.status_code == 422 and "unknown color" in detail(r)
    r = client.post("/v1/sessions", json={"scene": {"blocks": 3, "bowls": 3}})
    assert r.status_code == 422 and "CAPSTAN_MAX_SCENE_OBJECTS" in detail(r)
    r = client.post("/v1/sessions", content=b'{"scene": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in json.dumps(r.json())
    r = client.post("/v1/sessions", json={"scene": SCENE, "colour": "red"})
    assert r.status_code == 422
    r = client.post("/v1/sessions", content=b'{"scene": {}}', headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "(Content-Type 'text/plain' was sent)" in detail(r)
    sid = new_session(client)
    r = client.post(f"/v1/sessions/{sid}/commands", json={"text": "x" * 51})
    assert r.status_code == 422 and "CAPSTAN_MAX_COMMAND_CHARS" in detail(r)
    r = client.post(f"/v1/sessions/{sid}/programs", json={"code": "#" * 101})
    assert r.status_code == 422 and "CAPSTAN_MAX_CODE_BYTES" in detail(r)
    assert client.post(f"/v1/sessions/{sid}/commands", json={"text": ""}).status_code == 422
    for wordless in ("   \n\t ", "?!", "\u0000"):  # nothing to ask the model
        r = client.post(f"/v1/sessions/{sid}/commands", json={"text": wordless})
        assert r.status_code == 422 and "the command has no words" in detail(r), wordless
    r = client.post(f"/v1/sessions/{sid}/commands", json={"text": "stack\u0000 the blocks"})
    assert r.status_code == 422 and "control characters" in detail(r)
    assert client.get(f"/v1/sessions/{sid}/runs").json()["runs"] == []
    assert client.post("/v1/sessions/nope/commands", json={"text": "hi"}).status_code == 404
    assert client.get("/v1/runs/nope").status_code == 404
    assert client.get("/v1/runs/nope/events").status_code == 404
    assert client.post("/v1/runs/nope/cancel").status_code == 404
    r = client.get("/v1/runs/0123456789abcdef/video.gif")
    assert r.status_code == 404 and r.json()["detail"] == "no run '0123456789abcdef'"  # not "no video yet"


def test_program_run_traces_everything(make_service, client_for):
    client = client_for(make_service())
    sid = new_session(client)
    r = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["status"] == "succeeded", t["error"]
    assert t["kind"] == "program" and t["session_id"] == sid and t["code"].endswith(PUT)
    assert [c["name"] for c in t["primitive_calls"]] == ["put_first_on_second", "say"]
    call = t["primitive_calls"][0]
    assert call["args"] == ["red block", "blue bowl"] and call.get("error") is None
    assert t["said"] == ["the red block is in the blue bowl"]
    assert not in_bowl(t["state_before"], "red block", "blue bowl")
    assert in_bowl(t["state_after"], "red block", "blue bowl")
    assert t["timings"]["ended_at"] >= t["timings"]["started_at"] >= t["timings"]["queued_at"]
    assert client.get(f"/v1/runs/{t['id']}").json() == t
    assert [x["id"] for x in client.get(f"/v1/sessions/{sid}/runs").json()["runs"]] == [t["id"]]
    assert client.get("/v1/runs").json()["runs"][0]["id"] == t["id"]


def test_command_with_repair_and_sse(make_service, client_for):
    bad = fenced("put_first_on_second('red block', 'green bowl')")  # no green bowl: the static check refuses
    good = fenced(PUT)
    svc = make_service(replies=[bad, good])
    client = client_for(svc)
    sid = new_session(client)
    r = client.post(f"/v1/sessions/{sid}/commands", json={"text": "put the red block in the blue bowl"})
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    events = events_of(client, run_id)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["status", "status"] and kinds[-1] == "end"
    assert kinds.count("llm_call") == 2 and kinds.count("attempt") == 2 and "say" in kinds
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["data"]["status"] == "succeeded"
    t = client.get(f"/v1/runs/{run_id}").json()
    assert t["command"] == "put the red block in the blue bowl"
    assert [a["ok"] for a in t["attempts"]] == [False, True]
    assert "green bowl" in t["attempts"][0]["error"]["message"]
    assert len(t["llm_calls"]) == 2 and in_bowl(t["state_after"], "red block", "blue bowl")
    assert t["timings"]["exec_s"] >= 0 and t["timings"]["llm_s"] >= 0
    metrics = client.get("/metrics").text
    assert "capstan_llm_calls_total 2" in metrics
    assert re.search(r'capstan_llm_tokens_total\{kind="completion"\} [1-9]', metrics)
    # replay from a given event id (SSE Last-Event-ID)
    with client.stream("GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "3"}) as s:
        ids = [int(line[4:]) for line in "".join(s.iter_text()).splitlines() if line.startswith("id: ")]
    assert ids[0] == 4 and ids[-1] == len(events) - 1
    # a header that is no seq we sent replays from the start (it was a 500 for some)
    for odd in ("--1", "\u00b2", "9" * 5000, " 3x"):
        with client.stream(
            "GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": odd.encode("latin-1")}
        ) as s:
            assert s.status_code == 200, odd
            ids = [int(line[4:]) for line in "".join(s.iter_text()).splitlines() if line.startswith("id: ")]
        assert ids[0] == 0 and ids[-1] == len(events) - 1, odd


def test_llm_down_fails_only_that_run(make_service, client_for):
    svc = make_service(replies=[ProviderUnavailableError("connection refused by the model server")])
    client = client_for(svc)
    sid = new_session(client)
    t = client.post(f"/v1/sessions/{sid}/commands?wait=true", json={"text": "stack the blocks"}).json()
    assert t["status"] == "failed" and t["error"]["kind"] == "llm"
    assert "connection refused" in t["error"]["message"]
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('still here')"}).json()
    assert t["status"] == "succeeded" and t["said"] == ["still here"]


def test_cancel_is_an_estop_and_the_session_recovers(make_service, client_for):
    client = client_for(make_service())
    sid = new_session(client)
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
    deadline = time.time() + 30
    while not client.get(f"/v1/runs/{run_id}").json()["primitive_calls"]:
        assert time.time() < deadline
        time.sleep(0.05)
    r = client.post(f"/v1/sessions/{sid}/reset", json={"seed": 3})
    assert r.status_code == 409 and "cancel it or wait" in r.json()["detail"]
    assert client.get(f"/v1/sessions/{sid}/frame.png").content[:4] == b"\x89PNG"  # served while busy
    t0 = time.time()
    assert client.post(f"/v1/runs/{run_id}/cancel").json()["status"] in ("cancelling", "cancelled")
    t = wait_status(client, run_id, ("cancelled", "failed", "succeeded"), timeout=15)
    assert t["status"] == "cancelled" and t["error"]["kind"] == "cancelled"
    assert time.time() - t0 < 10
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded", t["error"]  # the backend was resumed after the e-stop


def test_runs_in_a_session_are_serialized_and_queues_are_bounded(make_service, client_for):
    svc = make_service(max_concurrent_runs=2, max_queued_runs=4, max_sessions=2)
    client = client_for(svc)
    a, b = new_session(client), new_session(client)
    r = client.post("/v1/sessions", json={"scene": SCENE})
    assert (
        r.status_code == 429
        and "CAPSTAN_MAX_SESSIONS" in r.json()["detail"]
        and int(r.headers["retry-after"]) > 0
    )
    first = client.post(f"/v1/sessions/{a}/programs", json={"code": LONG}).json()["run_id"]
    second = client.post(f"/v1/sessions/{a}/programs", json={"code": "say('two')"}).json()["run_id"]
    other = client.post(f"/v1/sessions/{b}/programs", json={"code": LONG}).json()["run_id"]
    wait_status(client, first, ("running",))
    wait_status(client, other, ("running",))
    assert client.get(f"/v1/runs/{second}").json()["status"] == "queued"  # its session is busy
    third = client.post(f"/v1/sessions/{a}/programs", json={"code": "say('three')"})
    assert third.status_code == 202
    r = client.post(f"/v1/sessions/{a}/programs", json={"code": "say('four')"})
    assert (
        r.status_code == 429
        and "its share of the run queue" in r.json()["detail"]  # half of CAPSTAN_MAX_QUEUED_RUNS
        and int(r.headers["retry-after"]) > 0
    )
    client.post(f"/v1/runs/{first}/cancel")
    t1 = wait_status(client, first, ("cancelled",))
    t2 = wait_status(client, second, ("succeeded",))
    t3 = wait_status(client, third.json()["run_id"], ("succeeded",))
    assert t3["timings"]["started_at"] >= t2["timings"]["ended_at"] >= t2["timings"]["started_at"]
    assert t2["timings"]["started_at"] >= t1["timings"]["ended_at"]
    client.post(f"/v1/runs/{other}/cancel")
    assert wait_status(client, other, ("cancelled",))["status"] == "cancelled"
    metrics = client.get("/metrics").text
    assert 'capstan_runs_total{status="succeeded"}' in metrics and "capstan_queue_depth" in metrics
    assert 'capstan_rejected_total{reason="queue_full"} 1' in metrics
    assert "capstan_sessions_active 2" in metrics


def test_health_auth_and_openapi(make_service, client_for):
    client = client_for(make_service(api_token="s3cret"))
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["llm"]["provider"] == "scripted" and isinstance(h["sandbox"], dict)
    assert client.post("/v1/sessions", json={"scene": SCENE}).status_code == 401
    assert client.get("/metrics").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert client.post("/v1/sessions", json={"scene": SCENE}, headers=auth).status_code == 201
    assert client.get("/v1/runs?access_token=s3cret").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/sessions/{session_id}/commands" in spec["paths"] and "Trace" in spec["components"]["schemas"]
    docs = client.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in docs and "https://" not in docs  # nothing from a CDN
    assert "https://" not in client.get("/redoc").text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/").text.startswith("<!doctype html>")
    assert client.get("/web/app.js").status_code == 200


@pytest.mark.slow
def test_media_frames_gif_and_mp4(make_service, client_for):
    client = client_for(make_service(media=True))
    sid = new_session(client)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded"
    media = t["media"]
    assert len(media["frames"]) >= 3 and media["gif"] and media["mp4"]
    assert client.get(media["frames"][-1]).content[:4] == b"\x89PNG"
    gif = client.get(media["gif"])
    assert gif.headers["content-type"] == "image/gif" and gif.content[:6] == b"GIF89a"
    mp4 = client.get(media["mp4"])
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"


def test_deleting_a_session_stops_its_run(make_service, client_for):
    client = client_for(make_service())
    sid = new_session(client)
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
    wait_status(client, run_id, ("running",))
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    assert wait_status(client, run_id, ("cancelled",))["status"] == "cancelled"
    assert client.get(f"/v1/sessions/{sid}").status_code == 404
    assert client.get(f"/v1/runs/{run_id}").status_code == 200  # the trace outlives the session


def test_the_service_on_postgresql(make_service, client_for, postgres_url):
    client = client_for(make_service(database_url=postgres_url))
    assert client.get("/healthz").json()["store"] == "postgresql"
    sid = new_session(client)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded" and in_bowl(t["state_after"], "red block", "blue bowl")
    assert client.get(f"/v1/runs/{t['id']}").json() == t
    assert [e["type"] for e in events_of(client, t["id"])][-1] == "end"


def test_sessions_come_back_after_a_restart_with_their_objects_and_conversation(make_service, client_for):
    svc = make_service(replies=[fenced(PUT)])
    client = client_for(svc)
    sid = new_session(client)
    t = client.post(
        f"/v1/sessions/{sid}/commands?wait=true", json={"text": "put the red block in the blue bowl"}
    )
    assert t.json()["status"] == "succeeded", t.text
    gone = new_session(client)
    assert client.delete(f"/v1/sessions/{gone}").status_code == 204
    before = svc.sessions.get(sid)
    history = before.conversation.history()
    svc.close()

    again = make_service()  # same data directory: what a restarted server sees
    client = client_for(again)
    assert [s["id"] for s in client.get("/v1/sessions").json()["sessions"]] == [sid]
    state = client.get(f"/v1/sessions/{sid}/state").json()
    assert in_bowl(state, "red block", "blue bowl")
    revived = again.sessions.get(sid)
    assert revived.conversation.history() == history and history[0]["command"].startswith("put the red")
    assert revived.created_at == before.created_at


def test_idle_sessions_expire_and_are_not_restored(make_service, client_for):
    svc = make_service(session_idle_s=600)
    client = client_for(svc)
    old, kept = new_session(client), new_session(client)
    svc.sessions.get(old).last_used -= 3600  # unused for an hour
    fresh = new_session(client)  # creating a session sweeps idle ones
    assert client.get(f"/v1/sessions/{old}").status_code == 404
    assert {s["id"] for s in client.get("/v1/sessions").json()["sessions"]} == {kept, fresh}
    stale = next(s for s in svc.sessions.all() if s.id == kept)  # all() does not count as a use
    stale.last_used -= 3600
    svc.store.save_session(kept, stale.to_doc())
    svc.close()

    again = make_service(session_idle_s=600)
    assert [s.id for s in again.sessions.all()] == [fresh]  # the stale one is not brought back
    assert {d["id"] for d in again.store.live_sessions()} == {fresh}


def test_helpers_and_nested_lmp_calls_are_their_own_trace_items(make_service, client_for):
    program = fenced("for b in parse_obj_name('the blocks'):\n    move_it(b)")
    helper = fenced("def move_it(name):\n    put_first_on_second(name, 'blue bowl')")
    nested = fenced("ret_val = ['red block']")
    # with compositional sampling on, two sampled candidates follow; the same program shares the
    # first's dry run
    client = client_for(
        make_service(replies=[program, helper, nested, program, program], sample_compositional=True)
    )
    sid = new_session(client)
    r = client.post(
        f"/v1/sessions/{sid}/commands?wait=true", json={"text": "put the blocks in the blue bowl"}
    )
    t = r.json()
    assert t["status"] == "succeeded", t["error"]
    assert [c.get("same_as") for c in t["attempts"][0]["candidates"]] == [None, 0, 0]
    assert t["attempts"][0]["selection"] == {"chosen": 0, "agreeing": 2, "candidates": 3}
    assert list(t["attempts"][0]["functions"]) == ["move_it"]
    assert t["nested_lmp_calls"] == [
        {
            "lmp": "parse_obj_name",
            "query": "the blocks",
            "code": "ret_val = ['red block']\n",
            "answer": ["red block"],
        }
    ]
    # the nested LMP's program is asked for once: the dry run and the real run share it
    assert [c["lmp"] for c in t["llm_calls"]] == [
        "tabletop_ui",
        "fgen",
        "parse_obj_name",
        "tabletop_ui",
        "tabletop_ui",
    ]


def test_the_openapi_document_declares_what_the_routes_return(make_service, client_for):
    """Every /v1 operation declares 401; every one with a session or run id declares 404; the
    routes that can be full or busy declare 429, 409 or 503; every 422 has one shape."""
    client = client_for(make_service())
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if path.startswith("/v1/"):
                assert "401" in codes, (method, path)
            if "{session_id}" in path or "{run_id}" in path:
                assert "404" in codes, (method, path)
    paths = spec["paths"]
    assert "429" in paths["/v1/sessions"]["post"]["responses"]
    assert {"404", "429"} <= set(paths["/v1/sessions/{session_id}/commands"]["post"]["responses"])
    assert {"409", "503"} <= set(paths["/v1/sessions/{session_id}/reset"]["post"]["responses"])
    sid = new_session(client)
    r = client.post(f"/v1/sessions/{sid}/commands", json={"text": "x" * 5000})
    assert r.status_code == 422 and "CAPSTAN_MAX_COMMAND_CHARS" in detail(r)  # the declared shape


def test_states_keep_every_key_the_backend_sends_in_its_order(make_service, client_for):
    """The schemas type states with primitives.scene_state; the JSON is still the backend's own."""
    svc = make_service()
    client = client_for(svc)
    sid = new_session(client)
    session = svc.sessions.get(sid)

    def raw() -> str:
        return json.dumps(session.state())

    assert json.dumps(client.get(f"/v1/sessions/{sid}").json()["state"]) == raw()
    assert json.dumps(client.get(f"/v1/sessions/{sid}/state").json()) == raw()
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    assert t["status"] == "succeeded", t["error"]
    stored = svc.store.get_run(t["id"])
    assert stored is not None
    for key in ("state_before", "state_after"):
        assert json.dumps(t[key]) == json.dumps(stored[key]), key
    assert json.dumps(t["state_after"]) == raw()


def test_a_run_records_its_first_calls_and_counts_the_rest(make_service, client_for):
    """A program may make thousands of host calls; its trace keeps the first MAX_CALL_EVENTS
    primitive calls and sayings and says how many more there were."""
    from capstan.service.runs import MAX_CALL_EVENTS

    client = client_for(make_service())
    sid = new_session(client)
    code = f"for i in range({MAX_CALL_EVENTS}):\n    say(str(i))\n"  # a say is a call and a saying
    trace = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": code}).json()
    assert trace["status"] == "succeeded", trace["error"]
    assert len(trace["primitive_calls"]) + len(trace["said"]) == MAX_CALL_EVENTS
    assert trace["said"][0] == "0" and trace["events_dropped"] == MAX_CALL_EVENTS
    again = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": "say('hi')"}).json()
    assert again["said"] == ["hi"] and again["events_dropped"] == 0


def test_run_listings_page_from_the_newest_to_the_oldest(make_service, client_for):
    client = client_for(make_service())
    sid, other = new_session(client), new_session(client)
    ran = [
        client.post(f"/v1/sessions/{s}/programs?wait=true", json={"code": f"say('{i}')"}).json()["id"]
        for i, s in enumerate([sid, other, sid, sid, other, sid])
    ]
    for path, expected in (
        (f"/v1/sessions/{sid}/runs", [r for i, r in enumerate(ran) if i in (0, 2, 3, 5)]),
        ("/v1/runs", ran),
    ):
        seen, before = [], None
        while True:
            page = client.get(path, params={"limit": 3, **({"before": before} if before else {})}).json()
            seen += [r["id"] for r in page["runs"]]
            before = page["next"]
            if before is None:
                break
        assert seen == expected[::-1], path
    r = client.get("/v1/runs", params={"before": "0123456789abcdef"})
    assert r.status_code == 404 and "no run '0123456789abcdef'" in r.json()["detail"]
