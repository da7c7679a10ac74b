"""Recorded HTTP responses for the cloud provider tests, served through httpx.MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm"


def recorded(name: str, http: ModuleType = httpx):
    """A response rebuilt from a recorded JSON fixture {status, headers, body} or an SSE stream file.

    `http` is the HTTP package the SDK uses: `httpx` for openai, `httpx2` for this anthropic release."""
    path = FIXTURES / name
    if path.suffix == ".sse":
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=path.read_bytes())
    data = json.loads(path.read_text())
    return http.Response(data["status"], headers=data["headers"], json=data["body"])


class RecordedServer:
    """Serves scripted responses (fixture names, or exceptions to raise) and keeps every request."""

    def __init__(self, *script: str | Exception, http: ModuleType = httpx) -> None:
        self.script = list(script)
        self.http = http
        self.requests: list = []

    def handler(self, request):
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return recorded(step, self.http)

    def client(self):
        return self.http.Client(transport=self.http.MockTransport(self.handler))

    def body(self, index: int = -1) -> dict:
        return json.loads(self.requests[index].content)
