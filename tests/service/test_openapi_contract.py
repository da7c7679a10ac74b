"""/openapi.json tells the truth: what it declares, and Schemathesis holding the running service to it.

Schemathesis runs as its own process against a real uvicorn on loopback (the sim robot, the real
sandbox, a scripted LLM with no replies), through all four phases (examples, coverage, fuzzing,
stateful). Left out: POST .../commands, the one operation that calls the LLM.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from capstan.service.api import create_app

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,negative_data_rejection"
LLM_OPERATION = "/v1/sessions/{session_id}/commands"
ERROR_BODY = "#/components/schemas/ErrorBody"
VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"
JSON = {"content-type": "application/json"}


def _schema_ref(response: dict) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_every_operation_declares_its_error_answers_with_one_error_body(make_service):
    spec = create_app(make_service()).openapi()
    assert {"HTTPBearer", "APIKeyQuery"} <= set(spec["components"]["securitySchemes"])
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        assert "default" not in responses, where
        if path.startswith("/v1/") or path == "/metrics":
            assert "401" in responses and op["security"], where
        if "{session_id}" in path or "{run_id}" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"400", "422"} <= set(responses), where
        for code, response in responses.items():
            if code == "422":
                assert _schema_ref(response) == VALIDATION_ERROR, where
            elif not code.startswith("2"):
                assert _schema_ref(response) == ERROR_BODY, (where, code)
    paths = spec["paths"]
    assert {"429", "503"} <= set(paths["/v1/sessions"]["post"]["responses"])
    assert "503" in paths["/v1/sessions"]["get"]["responses"]
    assert {"409", "503"} <= set(paths["/v1/sessions/{session_id}/reset"]["post"]["responses"])
    assert "503" in paths["/v1/sessions/{session_id}/frame.png"]["get"]["responses"]
    for kind in ("commands", "programs"):
        responses = paths[f"/v1/sessions/{{session_id}}/{kind}"]["post"]["responses"]
        assert {"200", "202", "404", "429"} <= set(responses), kind


def test_scene_states_are_declared_with_their_shape(make_service):
    from capstan.primitives.scene_state import GripperState, ObjectState, SceneState, WorkspaceBounds

    spec = create_app(make_service()).openapi()
    schemas = spec["components"]["schemas"]
    for model in (SceneState, ObjectState, GripperState, WorkspaceBounds):
        assert schemas[model.__name__]["required"] == list(model.__annotations__), model.__name__
    state = "#/components/schemas/SceneState"
    assert schemas["SessionOut"]["properties"]["state"]["$ref"] == state
    for key in ("state_before", "state_after"):
        assert {"$ref": state} in schemas["Trace"]["properties"][key]["anyOf"], key
    assert _schema_ref(spec["paths"]["/v1/sessions/{session_id}/state"]["get"]["responses"]["200"]) == state


def test_a_body_that_is_not_utf8_gets_the_declared_400(make_service, client_for):
    client = client_for(make_service())
    r = client.post("/v1/sessions", content=b'{"robot": "\xff"}', headers=JSON)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)


def test_nan_and_lax_types_are_refused_with_the_standard_422(make_service, client_for):
    client = client_for(make_service())
    sid = client.post("/v1/sessions", json={"scene": {"objects": ["red block"]}}).json()["id"]
    for body in (b'{"seed": NaN}', b'{"seed": true}', b'{"seed": "3"}', b'{"scene": {"blocks": 1.5}}'):
        r = client.post(f"/v1/sessions/{sid}/reset", content=body, headers=JSON)
        assert r.status_code == 422, body
        assert all({"loc", "msg", "type"} <= set(d) for d in r.json()["detail"]), r.text


@pytest.mark.slow
def test_schemathesis_finds_nothing_against_the_running_service(make_service, serve, tmp_path):
    base = serve(make_service(media=True, run_timeout_s=10.0))
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--exclude-path",
        LLM_OPERATION,
        "--max-examples",
        "15",
        "--seed",
        "20240613",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--no-color",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)  # noqa: S603
    out = done.stdout + done.stderr
    print("\n".join(out.splitlines()[-30:]))  # Schemathesis's summary, shown with `pytest -s`
    assert done.returncode == 0, out[-6000:]
    total = len(list(_operations(httpx.get(f"{base}/openapi.json").json())))
    assert f"Selected: {total - 1}/{total}" in out, out[-3000:]  # every operation but the LLM one
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in out, out[-3000:]


def test_a_stored_state_missing_a_declared_key_is_still_served_as_stored():
    from capstan.service.schemas import Trace

    partial = {"objects": {"red block": {"position": [0.0, 0.5, 0.02]}}, "time_s": 1.5}
    trace = Trace.model_validate(
        {"id": "r1", "session_id": "s1", "status": "succeeded", "kind": "program", "state_before": partial}
    )
    assert trace.model_dump(mode="json")["state_before"] == partial


def test_a_lone_surrogate_in_any_string_gets_the_422_not_a_500(make_service, client_for):
    """JSON may spell a UTF-16 surrogate that no UTF-8 text can hold; the 422 shows it escaped."""
    client = client_for(make_service())
    sid = client.post("/v1/sessions", json={"scene": {"objects": ["red block"]}}).json()["id"]
    for path, body in (
        ("/v1/sessions", b'{"robot": "\\ud800"}'),
        (f"/v1/sessions/{sid}/programs", b'{"code": "say(\\"\\ud800\\")"}'),
        (f"/v1/sessions/{sid}/commands", b'{"text": "hi \\udfff"}'),
    ):
        r = client.post(path, content=body, headers=JSON)
        assert r.status_code == 422, (path, r.text)
        assert "\\ud" in r.text.lower() and all({"loc", "msg", "type"} <= set(d) for d in r.json()["detail"])
    assert client.get(f"/v1/sessions/{sid}").status_code == 200


def test_a_body_over_the_ceiling_gets_413_before_anything_reads_it(make_service, client_for):
    client = client_for(make_service(max_body_bytes=60_000, api_token="secret"))
    big = b'{"code": "' + b"#" * 70_000 + b'"}'
    r = client.post("/v1/sessions/nope/programs", content=big, headers=JSON)
    assert r.status_code == 413 and "CAPSTAN_MAX_BODY_BYTES" in r.json()["detail"]
    chunks = (big[i : i + 8192] for i in range(0, len(big), 8192))  # no Content-Length: counted as it comes
    r = client.post("/v1/sessions/nope/programs", content=chunks, headers=JSON)
    assert r.status_code == 413, r.text
    r = client.post("/v1/sessions/nope/programs", content=b'{"code": "say(1)"}', headers=JSON)
    assert r.status_code == 401  # under the ceiling: the token check answers as before


def test_a_ceiling_below_the_largest_program_is_refused_at_start():
    from capstan.service.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="CAPSTAN_MAX_BODY_BYTES"):
        Settings.from_env({"CAPSTAN_MAX_BODY_BYTES": "1000"})


def test_a_delete_that_loses_the_race_for_its_session_gets_404(make_service, client_for):
    """Two DELETEs of one session: both find it, one removes it first; the other answers 404."""
    service = make_service()
    client = client_for(service)
    sid = client.post("/v1/sessions", json={"scene": {"objects": ["red block"]}}).json()["id"]
    cancel = service.runs.cancel_session

    def cancel_then_lose(session):  # the other DELETE removes the session meanwhile
        cancel(session)
        service.sessions.remove(session.id)

    service.runs.cancel_session = cancel_then_lose
    r = client.delete(f"/v1/sessions/{sid}")
    assert r.status_code == 404 and isinstance(r.json()["detail"], str)
    assert client.get("/healthz").status_code == 200


def test_an_unknown_run_is_404_before_the_decision_body_is_checked(make_service, client_for):
    client = client_for(make_service())
    for verb in ("approve", "reject"):
        for body in ({}, {"attempt": 1}):
            r = client.post(f"/v1/runs/nope/{verb}", json=body)
            assert r.status_code == 404, (verb, body, r.text)
