"""Only the service's own page and non-browser clients may use it; no other web page.

A browser sends a page's requests to any address, with the page's origin in `Origin`. Two ways a
page on another site reaches a service on the operator's machine, and what stops each:
- a cross-site request (a form post, a fetch without a preflight: enough to create sessions,
  reset or cancel): refused when `Origin` names another origin than the request's `Host`;
- DNS rebinding (the attacker's name made to resolve to 127.0.0.1, so the page is same-origin
  with the service): without a token the service answers only requests addressed to a loopback
  name, and such a page sends its own name as `Host`. With CAPSTAN_API_TOKEN set, the token
  guards every route but the page and /healthz, and the service may have any name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from capstan.service.config import is_loopback

DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(value: str, scheme: str = "http") -> tuple[str, int | None]:
    """(host, port) of a Host header value or an origin's netloc; ("", None) when unreadable."""
    try:
        parts = urlsplit(f"//{value}")
        return (parts.hostname or "", parts.port or DEFAULT_PORTS.get(scheme))
    except ValueError:  # a port that is not a number, an unclosed [
        return "", None


def same_origin(origin: str, host: str, scheme: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme != scheme or not parts.netloc:
        return False
    return split_host(parts.netloc, parts.scheme) == split_host(host, scheme)


class OriginGuard:
    """ASGI middleware: 403 for a request from another web origin, and (`loopback_only`, the
    service without a token) for one addressed to a name that is not loopback."""

    def __init__(self, app: ASGIApp, loopback_only: bool):
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"detail": problem}, status_code=403)(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"  # as a page's origin says
        if self.loopback_only and not is_loopback(split_host(host, scheme)[0]):
            return (
                f"this service has no CAPSTAN_API_TOKEN, so it answers only requests addressed to a "
                f"loopback name (localhost, 127.0.0.1, [::1]), not {host[:100]!r}; set a token to "
                "serve other names"
            )
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host, scheme):
            return f"requests from other web pages are refused (Origin {origin[:100]!r})"
        return None
