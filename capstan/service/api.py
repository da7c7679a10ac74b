"""The HTTP app (FastAPI): `create_app(service)` puts the routers together; OpenAPI at /docs, /openapi.json.

The routes live in one router per resource: session_routes, run_routes, skill_routes, ops_routes.

Routes (all /v1 routes and /metrics need `Authorization: Bearer $CAPSTAN_API_TOKEN` when it is set;
`?access_token=` works too, for EventSource and <img>; every route refuses, with 403, a request
whose `Origin` is another site, and without a token one addressed to a name that is not loopback:
origin_guard.py):

    POST   /v1/sessions                      {"robot": "sim", "scene": {...}} -> 201 session + state
                                             ({"robot": NAME} for a remote robot from CAPSTAN_ROBOTS)
    GET    /v1/sessions, /v1/sessions/{id}   DELETE /v1/sessions/{id} (cancels its run)
    GET    /v1/sessions/{id}/state           GET /v1/sessions/{id}/frame.png?view=top|angled
    POST   /v1/sessions/{id}/reset           {"seed": n} or {"scene": {...}}
    POST   /v1/sessions/{id}/commands        {"text": ...}  -> 202 {run_id} | ?wait=true -> 200 trace
    POST   /v1/sessions/{id}/programs        {"code": ...}  (same)
    GET    /v1/sessions/{id}/runs, /v1/runs  run summaries, newest first, ?limit=N a page; the next
                                             page with ?before=<the answer's next>
    GET    /v1/sessions/{id}/skills          the session's skills; .../skills/export; POST .../skills
                                             imports an export; DELETE .../skills/{name}
    GET    /v1/runs/{id}                     the trace (docs/CONTRACTS.md)
    GET    /v1/runs/{id}/events              Server-Sent Events, see below
    POST   /v1/runs/{id}/cancel              e-stop
    POST   /v1/runs/{id}/approve | reject    {"by": "operator", "reason": "..."}: decide a run that is
                                             awaiting_approval (CAPSTAN_APPROVAL); 409 when it is not
    GET    /v1/runs/{id}/video.gif | video.mp4 | frames/{n}.png
    GET    /healthz, /metrics (Prometheus), / (demo page), /docs, /redoc

SSE: each event is `id: <seq>`, `event: <type>`, `data: {"seq", "type", "t", "data"}`; past events are
replayed first (from `Last-Event-ID` + 1 when given), then live ones. Types: `status` {status},
`llm_call`, `code`, `nested_lmp`, `candidate`, `selection`, `approval`, `decision`, `attempt`
(docs/CONTRACTS.md lmp events), `primitive_call`, `say`, `frame` {index, url}, and last `end` {status, error}.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from capstan.primitives.errors import RobotUnavailableError
from capstan.service import ops_routes, run_routes, session_routes, skill_routes
from capstan.service.body_limit import BodyLimit
from capstan.service.deps import check_token
from capstan.service.head_requests import HeadAsGet
from capstan.service.origin_guard import OriginGuard
from capstan.service.responses import OTHER_SITE, RETRY_AFTER_S, TOO_LARGE, UNAUTHORIZED, validation_failed
from capstan.service.security_headers import SecurityHeaders
from capstan.service.service import VERSION, Service
from capstan.service.sessions import SessionBusyError, SessionNotFound


def create_app(service: Service) -> FastAPI:
    """The HTTP app serving `service` (kept on app.state.service, where the routes' dependencies find it)."""
    app = FastAPI(
        title="Capstan",
        version=VERSION,
        docs_url=None,
        redoc_url=None,
        description="Natural-language robot commands become sandboxed policy programs; every run is traced.",
    )
    app.state.service = service
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, max_bytes=service.settings.max_body_bytes)
    app.add_middleware(OriginGuard, loopback_only=not service.settings.api_token)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RobotUnavailableError, robot_unavailable)
    app.add_exception_handler(SessionNotFound, session_gone)
    app.add_exception_handler(SessionBusyError, session_busy)
    app.add_exception_handler(RequestValidationError, validation_failed)
    v1 = APIRouter(
        prefix="/v1",
        dependencies=[Depends(check_token)],
        responses={**UNAUTHORIZED, **OTHER_SITE, **TOO_LARGE},
    )
    for routes in (session_routes, run_routes, skill_routes):
        v1.include_router(routes.router)
    app.include_router(v1)
    app.include_router(ops_routes.router)
    ops_routes.mount_static(app)
    return app


async def session_busy(_request: Request, exc: Exception) -> JSONResponse:
    """A change between runs (reset, declare, skills, an operator's action) while a run holds the
    session or its robot: 409, said in one place (a route that means another answer catches it)."""
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def session_gone(_request: Request, exc: Exception) -> JSONResponse:
    """A session deleted (or expired) while a request about it was under way: 404, as if it had
    been gone when the request came."""
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def robot_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """A remote robot that cannot be reached: 503, and the service keeps serving."""
    return JSONResponse(
        {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S["robot"])}
    )
