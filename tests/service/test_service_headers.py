"""What the service tells browsers: no framing by other sites, no sniffing, no Referer, and on the
demo page a policy that runs only the service's own files; the token kept out of the access log."""

from __future__ import annotations

import logging

from capstan.service.deps import redact_access_tokens


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
