"""HTTP routes (FastAPI). `create_app(service)` builds the app; OpenAPI at /docs and /openapi.json.

Routes (all /v1 routes and /metrics need `Authorization: Bearer $CAPSTAN_API_TOKEN` when it is set;
`?access_token=` works too, for EventSource and <img>):

    POST   /v1/sessions                      {"robot": "sim", "scene": {...}} -> 201 session + state
                                             ({"robot": NAME} for a remote robot from CAPSTAN_ROBOTS)
    GET    /v1/sessions, /v1/sessions/{id}   DELETE /v1/sessions/{id} (cancels its run)
    GET    /v1/sessions/{id}/state           GET /v1/sessions/{id}/frame.png?view=top|angled
    POST   /v1/sessions/{id}/reset           {"seed": n} or {"scene": {...}}
    POST   /v1/sessions/{id}/commands        {"text": ...}  -> 202 {run_id} | ?wait=true -> 200 trace
    POST   /v1/sessions/{id}/programs        {"code": ...}  (same)
    GET    /v1/sessions/{id}/runs, /v1/runs  run summaries, newest first
    GET    /v1/sessions/{id}/skills          the session's skills; .../skills/export; POST .../skills
                                             imports an export; DELETE .../skills/{name}
    GET    /v1/runs/{id}                     the trace (docs/CONTRACTS.md)
    GET    /v1/runs/{id}/events              Server-Sent Events, see below
    POST   /v1/runs/{id}/cancel              e-stop
    GET    /v1/runs/{id}/video.gif | video.mp4 | frames/{n}.png
    GET    /healthz, /metrics (Prometheus), / (demo page), /docs, /redoc

SSE: each event is `id: <seq>`, `event: <type>`, `data: {"seq", "type", "t", "data"}`; past events are
replayed first (from `Last-Event-ID` + 1 when given), then live ones. Types: `status` {status},
`llm_call`, `code`, `nested_lmp`, `candidate`, `selection`, `attempt` (docs/CONTRACTS.md lmp events), `primitive_call`, `say`,
`frame` {index, url}, and last `end` {status, error}.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from capstan.primitives.errors import RobotUnavailableError
from capstan.service import schemas
from capstan.service.media import run_dir
from capstan.service.responses import (
    BUSY,
    NOT_FOUND,
    RETRY_AFTER_S,
    TOO_MANY,
    UNAUTHORIZED,
    UNAVAILABLE,
    unprocessable,
)
from capstan.service.robots import UnknownRobotError, scene_error_type, scene_refused, takes_scene
from capstan.service.runs import QueueFullError, Run, RunNotFound
from capstan.service.service import VERSION, Service
from capstan.service.sessions import Session, SessionBusyError, SessionLimitError, SessionNotFound
from capstan.service.skill_routes import skill_routes
from capstan.service.trace import assemble, summary

WEB_DIR = Path(__file__).with_name("web")
KEEPALIVE_S = 15.0


def create_app(service: Service) -> FastAPI:
    settings = service.settings
    app = FastAPI(title="Capstan", version=VERSION, docs_url=None, redoc_url=None,
                  description="Natural-language robot commands become sandboxed policy programs; every run is traced.")
    app.state.service = service
    _offline_docs(app)

    @app.exception_handler(RobotUnavailableError)
    async def robot_unavailable(_request: Request, exc: RobotUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S["robot"])})

    def check_token(request: Request) -> None:
        if not settings.api_token:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("access_token", "")
        if not hmac.compare_digest(given.encode(), settings.api_token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (send 'Authorization: Bearer <CAPSTAN_API_TOKEN>')",
                                headers={"WWW-Authenticate": "Bearer"})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_token)], responses=UNAUTHORIZED)

    def session_or_404(session_id: str) -> Session:
        try:
            return service.sessions.get(session_id)
        except SessionNotFound as exc:
            raise HTTPException(404, str(exc)) from None

    def session_out(s: Session) -> schemas.SessionOut:
        return schemas.SessionOut(id=s.id, robot=s.robot, scene=s.scene, state=s.state(),
                                  created_at=s.created_at, busy=s.busy)

    def trace_or_404(run_id: str) -> dict:
        row = service.store.get_run(run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return assemble(row, service.store.events(run_id))

    def check_scene(scene: schemas.SceneSpec) -> None:
        if scene.object_count() > settings.max_scene_objects:
            raise unprocessable(f"scene has {scene.object_count()} objects; at most "
                                     f"{settings.max_scene_objects} are allowed (CAPSTAN_MAX_SCENE_OBJECTS)")

    @v1.post("/sessions", status_code=201, response_model=schemas.SessionOut, responses={**TOO_MANY, **UNAVAILABLE})
    def create_session(body: schemas.CreateSession | None = None) -> schemas.SessionOut:
        """Create a session with its own world; without a body: the sim robot, 3 blocks and 3 bowls."""
        body = body or schemas.CreateSession()
        check_scene(body.scene)
        scene = body.scene.spec()
        robots = service.robots
        if body.robot not in robots:
            raise unprocessable(str(UnknownRobotError(body.robot, robots)))
        if not takes_scene(body.robot):
            if "scene" in body.model_fields_set:
                raise unprocessable(scene_refused(body.robot, "omit 'scene'"))
            scene = {}
        try:
            session = service.sessions.create(body.robot, scene)
        except SessionLimitError as exc:
            service.metrics.rejected_request("sessions_full")
            raise HTTPException(429, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["sessions_full"])}) from None
        except scene_error_type() as exc:
            raise unprocessable(str(exc)) from None
        return session_out(session)

    @v1.get("/sessions", response_model=schemas.SessionList)
    def list_sessions() -> schemas.SessionList:
        return schemas.SessionList(sessions=[session_out(s) for s in service.sessions.all()])

    @v1.get("/sessions/{session_id}", response_model=schemas.SessionOut, responses={**NOT_FOUND, **UNAVAILABLE})
    def get_session(session_id: str) -> schemas.SessionOut:
        return session_out(session_or_404(session_id))

    @v1.delete("/sessions/{session_id}", status_code=204, responses=NOT_FOUND)
    def delete_session(session_id: str) -> Response:
        session = session_or_404(session_id)
        service.runs.cancel_session(session)
        service.sessions.remove(session_id)
        session.close()
        return Response(status_code=204)

    @v1.get("/sessions/{session_id}/state", responses={**NOT_FOUND, **UNAVAILABLE})
    def get_state(session_id: str) -> dict:
        """The scene state (docs/CONTRACTS.md); while a run executes, as of its last motion."""
        return session_or_404(session_id).state()

    @v1.get("/sessions/{session_id}/frame.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **NOT_FOUND, **UNAVAILABLE})
    def get_frame(session_id: str, view: str = Query("top", pattern="^(top|angled)$")) -> Response:
        try:
            png = session_or_404(session_id).frame_png(view)
        except SessionBusyError as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["busy"])}) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @v1.post("/sessions/{session_id}/reset", response_model=schemas.SessionOut,
             responses={**NOT_FOUND, **BUSY, **UNAVAILABLE})
    def reset_session(session_id: str, body: schemas.ResetSession | None = None) -> schemas.SessionOut:
        session = session_or_404(session_id)
        body = body or schemas.ResetSession()
        if not takes_scene(session.robot) and (body.scene is not None or body.seed is not None):
            raise unprocessable(scene_refused(session.robot, "reset only reconnects and clears the "
                                                                  "conversation, so send no scene or seed"))
        if body.scene is not None:
            check_scene(body.scene)
        try:
            session.reset(body.scene.spec() if body.scene else None, body.seed)
            service.sessions.save(session)
        except SessionBusyError as exc:
            raise HTTPException(409, str(exc)) from None
        except scene_error_type() as exc:
            raise unprocessable(str(exc)) from None
        return session_out(session)

    async def start_run(session_id: str, kind: str, text: str, wait: bool, response: Response):
        session = session_or_404(session_id)
        try:
            run = service.runs.submit(session, kind, text)
        except QueueFullError as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["queue_full"])}) from None
        if wait:
            await wait_end(run)
            return trace_or_404(run.id)
        response.status_code = 202
        return schemas.RunAccepted(run_id=run.id, session_id=session.id, status=run.status,
                                   trace_url=f"/v1/runs/{run.id}", events_url=f"/v1/runs/{run.id}/events")

    run_responses = {202: {"model": schemas.RunAccepted, "description": "run queued (without ?wait=true)"},
                     200: {"model": schemas.Trace, "description": "finished run (with ?wait=true)"},
                     **NOT_FOUND, **TOO_MANY}

    @v1.post("/sessions/{session_id}/commands", responses=run_responses,
             response_model=schemas.Trace | schemas.RunAccepted)
    async def post_command(session_id: str, body: schemas.CommandRequest, response: Response,
                           wait: bool = Query(False, description="answer when the run ends, with its trace")):
        if len(body.text) > settings.max_command_chars:
            raise unprocessable(f"command is {len(body.text)} characters; at most "
                                     f"{settings.max_command_chars} are allowed (CAPSTAN_MAX_COMMAND_CHARS)")
        return await start_run(session_id, "command", body.text, wait, response)

    @v1.post("/sessions/{session_id}/programs", responses=run_responses,
             response_model=schemas.Trace | schemas.RunAccepted)
    async def post_program(session_id: str, body: schemas.ProgramRequest, response: Response,
                           wait: bool = Query(False, description="answer when the run ends, with its trace")):
        size = len(body.code.encode())
        if size > settings.max_code_bytes:
            raise unprocessable(f"program is {size} bytes; at most {settings.max_code_bytes} are allowed "
                                     "(CAPSTAN_MAX_CODE_BYTES)")
        return await start_run(session_id, "program", body.code, wait, response)

    @v1.get("/sessions/{session_id}/runs", response_model=schemas.RunList, responses=NOT_FOUND)
    def session_runs(session_id: str, limit: int = Query(50, ge=1, le=500)) -> schemas.RunList:
        rows = service.store.list_runs(session_id=session_id, limit=limit)
        if not rows:
            session_or_404(session_id)
        return schemas.RunList(runs=[summary(r) for r in rows])

    @v1.get("/runs", response_model=schemas.RunList)
    def recent_runs(limit: int = Query(50, ge=1, le=500)) -> schemas.RunList:
        return schemas.RunList(runs=[summary(r) for r in service.store.list_runs(limit=limit)])

    @v1.get("/runs/{run_id}", response_model=schemas.Trace, responses=NOT_FOUND)
    def get_run(run_id: str) -> dict:
        return trace_or_404(run_id)

    @v1.post("/runs/{run_id}/cancel", responses=NOT_FOUND)
    def cancel_run(run_id: str) -> dict:
        """E-stop: stops the robot at once and kills the program; the run ends 'cancelled'."""
        try:
            status = service.runs.cancel(run_id)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return {"run_id": run_id, "status": status}

    @v1.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events: past events, then live ones, then 'end'"},
                       **NOT_FOUND})
    async def run_events(run_id: str, request: Request) -> StreamingResponse:
        if service.store.get_run(run_id) is None:
            raise HTTPException(404, f"no run {run_id!r}")
        last_id = request.headers.get("last-event-id")
        after = int(last_id) if last_id and last_id.lstrip("-").isdigit() else -1
        return StreamingResponse(sse_stream(run_id, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def sse_stream(run_id: str, after: int):
        run = service.runs.get_active(run_id)
        queue = None
        if run is not None:
            past, queue = run.hub.subscribe()
        else:
            past = service.store.events(run_id)
        try:
            ended = False
            for ev in past:
                ended = ended or ev["type"] == "end"
                if ev["seq"] > after:
                    yield sse(ev)
            if queue is None and not ended:
                row = service.store.get_run(run_id) or {}
                yield sse({"seq": 10**9, "type": "end", "t": 0,
                           "data": {"status": row.get("status"), "error": row.get("error")}})
            while queue is not None and not ended:
                try:
                    ev = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                ended = ev["type"] == "end"
                if ev["seq"] > after:
                    yield sse(ev)
        finally:
            if run is not None:
                run.hub.unsubscribe(queue)

    def media_file(run_id: str, name: str, media_type: str) -> FileResponse:
        try:
            path = run_dir(settings.media_dir, run_id) / name
        except ValueError:
            raise HTTPException(404, f"no run {run_id!r}") from None
        if not path.is_file():
            raise HTTPException(404, f"run {run_id} has no {name} (media are written when the run ends; "
                                     "CAPSTAN_MEDIA=0 turns them off)")
        return FileResponse(path, media_type=media_type)

    @v1.get("/runs/{run_id}/video.gif", response_class=FileResponse, responses=NOT_FOUND)
    def run_gif(run_id: str) -> FileResponse:
        return media_file(run_id, "video.gif", "image/gif")

    @v1.get("/runs/{run_id}/video.mp4", response_class=FileResponse, responses=NOT_FOUND)
    def run_mp4(run_id: str) -> FileResponse:
        return media_file(run_id, "video.mp4", "video/mp4")

    @v1.get("/runs/{run_id}/frames/{index}.png", response_class=FileResponse, responses=NOT_FOUND)
    def run_frame(run_id: str, index: int) -> FileResponse:
        return media_file(run_id, f"frames/{index}.png", "image/png")

    v1.include_router(skill_routes(service, session_or_404))
    app.include_router(v1)

    async def wait_end(run: Run) -> None:
        past, queue = run.hub.subscribe()
        try:
            if queue is None or any(ev["type"] == "end" for ev in past):
                return
            while (await queue.get())["type"] != "end":
                pass
        finally:
            run.hub.unsubscribe(queue)

    @app.get("/healthz", response_model=schemas.Health, tags=["ops"])
    def healthz() -> schemas.Health:
        running, queued = service.runs.counts()
        return schemas.Health(status="ok", version=VERSION, llm=service.llm_info(), sandbox=service.isolation(),
                              sessions=len(service.sessions), runs_active=running, runs_queued=queued,
                              store="postgresql" if settings.database_url else "sqlite",
                              robots=list(service.robots))

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"], dependencies=[Depends(check_token)],
             responses=UNAUTHORIZED)
    def metrics() -> PlainTextResponse:
        running, queued = service.runs.counts()
        text = service.metrics.render(len(service.sessions), running, queued)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs and /redoc from the Swagger UI / ReDoc files shipped in the fastapi-offline wheel (no CDN)."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    try:
        import fastapi_offline

        static = Path(fastapi_offline.__file__).with_name("static")
        app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")
        js, css, redoc = "/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css", "/docs-static/redoc.standalone.js"
    except ImportError:  # fall back to FastAPI's CDN links
        js = css = redoc = None

    @app.get("/docs", include_in_schema=False)
    def docs():
        kw = {"swagger_js_url": js, "swagger_css_url": css,
              "swagger_favicon_url": "/docs-static/favicon.png"} if js else {}
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Capstan API", **kw)

    @app.get("/redoc", include_in_schema=False)
    def redoc_page():
        kw = {"redoc_js_url": redoc, "redoc_favicon_url": "/docs-static/favicon.png",
              "with_google_fonts": False} if redoc else {}
        return get_redoc_html(openapi_url="/openapi.json", title="Capstan API", **kw)


def sse(ev: dict) -> str:
    return f"id: {ev['seq']}\nevent: {ev['type']}\ndata: {json.dumps(ev)}\n\n"
