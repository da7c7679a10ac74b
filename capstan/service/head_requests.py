"""HEAD is answered as GET without the body (RFC 9110, 9.3.2): FastAPI routes answer only the
methods they name, so `curl -I` on the page or a video was a 405.

The GET runs until its response starts; its body is not sent, and a streamed one (an event
stream never ends by itself) is not read any further.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _HeadersSent(Exception):
    """Raised into the GET once its headers are out: nothing after them is wanted."""


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as a GET; only the response's start goes out."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        started = False

        async def headers_only(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _HeadersSent

        try:
            await self.app({**scope, "method": "GET"}, receive, headers_only)
        except _HeadersSent:
            pass
        except BaseExceptionGroup as group:  # raised inside a task group (a streamed response)
            rest = group.subgroup(lambda exc: not isinstance(exc, _HeadersSent))
            if rest is not None or not started:
                raise
