"""What the service tells browsers: no framing by other sites, no sniffing, no Referer, and on the
demo page a policy that runs only the service's own files; the token kept out of the access log;
HEAD answered as GET."""

from __future__ import annotations

import logging

import pytest

from capstan.service.deps import redact_access_tokens
from tests.service.test_service_api import LONG, PUT, new_session, wait_status


def test_the_page_cannot_be_framed_and_runs_only_its_own_files(make_service, client_for):
    client = client_for(make_service())
    for path in ("/", "/web/app.js", "/healthz"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    policy = client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "content-security-policy" not in client.get("/healthz").headers  # JSON needs none
    assert client.get("/favicon.ico").status_code == 204  # no icon, and no 404 in the page's console


def test_the_access_log_hides_the_token_however_its_name_is_spelt():
    for query in ("access_token=s3cret", "x=1&access%5Ftoken=s3cret", "access%5ftoken=s3cret&y=2"):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1", "GET", f"/v1/runs/ab/video.mp4?{query}", "1.1", 200),
            None,
        )
        redact_access_tokens(record)
        assert "s3cret" not in record.getMessage() and "***" in record.getMessage(), query


@pytest.mark.timeout(60)
def test_head_answers_as_get_without_the_body(make_service, client_for):
    """`curl -I` on the page, a video or a run's event stream: GET's status and headers, no body,
    and a stream that never ends by itself is not read on."""
    client = client_for(make_service(media=True))
    page = client.head("/")
    assert page.status_code == 200 and page.content == b""
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and "content-security-policy" in page.headers
    sid = new_session(client)
    t = client.post(f"/v1/sessions/{sid}/programs?wait=true", json={"code": PUT}).json()
    video = client.head(t["media"]["mp4"])
    size = len(client.get(t["media"]["mp4"]).content)
    assert video.status_code == 200 and video.content == b"" and int(video.headers["content-length"]) == size
    run_id = client.post(f"/v1/sessions/{sid}/programs", json={"code": LONG}).json()["run_id"]
    wait_status(client, run_id, ("running",))
    events = client.head(f"/v1/runs/{run_id}/events")
    assert events.status_code == 200 and events.headers["content-type"].startswith("text/event-stream")
    client.post(f"/v1/runs/{run_id}/cancel")
    assert client.head("/v1/runs/0123456789abcdef").status_code == 404  # GET's answer, headers only
    assert client.head(f"/v1/sessions/{sid}/programs").status_code == 405  # POST only: no GET to run


def test_other_web_pages_cannot_use_the_service(make_service, client_for):
    """A cross-site request (a form post creating sessions, a cancel) and a DNS-rebound page
    (same-origin with the service under the attacker's name) are refused before any route runs;
    the service's own page and clients without an Origin are not."""
    svc = make_service()
    client = client_for(svc)
    hostile = {"origin": "http://attacker.example", "content-type": "text/plain"}
    r = client.post("/v1/sessions", headers=hostile, content=b"")
    assert r.status_code == 403 and "other web pages" in r.json()["detail"]
    rebound = {"host": "attacker.example:8000", "origin": "http://attacker.example:8000"}
    r = client.get("/v1/sessions", headers=rebound)
    assert r.status_code == 403 and "loopback name" in r.json()["detail"]
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 403
    assert client.get("/v1/sessions").json()["sessions"] == []  # nothing was created
    for page in ("http://127.0.0.1", "http://localhost"):  # the service's own page, by either name
        headers = {"origin": page, "host": page.removeprefix("http://")}
        assert client.post("/v1/sessions", headers=headers, json={}).status_code == 201, page
    ipv6 = client.get("/healthz", headers={"host": "[::1]:8000", "origin": "http://[::1]:8000"})
    assert ipv6.status_code == 200
    assert client.get("/healthz", headers={"origin": "null"}).status_code == 403  # a sandboxed frame


def test_with_a_token_any_name_serves_but_other_pages_still_do_not(make_service, client_for):
    client = client_for(make_service(api_token="s3cret"), base_url="http://lab.example")
    auth = {"authorization": "Bearer s3cret"}
    assert client.get("/v1/sessions", headers=auth).status_code == 200
    r = client.get("/v1/sessions", headers={**auth, "origin": "http://attacker.example"})
    assert r.status_code == 403
