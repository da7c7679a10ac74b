"""Response headers that keep browsers from turning the service against its operators.

No other site may frame a response (the page's Approve button could be clickjacked in an
invisible frame), content types are not sniffed, no URL leaves as a Referer (media URLs carry the
token), and the demo page may load and run only the service's own files, so a text the page shows
(an object's name, what the robot said) can never become a script.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_EVERYWHERE = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response; the page's policy on the page."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = [*_EVERYWHERE]
        if path == "/" or path.startswith("/web/"):
            extra.append((b"content-security-policy", PAGE_POLICY.encode()))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, sending)
