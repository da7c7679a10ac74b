"""Routes for operating the service: /healthz, /metrics (Prometheus), the demo page, /docs and /redoc.

/docs and /redoc use the Swagger UI and ReDoc files shipped in the fastapi-offline wheel when it is
installed (nothing from a CDN), else FastAPI's CDN links; `mount_static` serves those files and the page's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from capstan.service import schemas
from capstan.service.deps import ServiceDep, check_token
from capstan.service.responses import UNAUTHORIZED
from capstan.service.service import VERSION

WEB_DIR = Path(__file__).with_name("web")
DOCS_STATIC = "/docs-static"
router = APIRouter()


def _offline_assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).with_name("static")


OFFLINE_ASSETS = _offline_assets()


def mount_static(app: FastAPI) -> None:
    """The demo page's files under /web, the docs pages' under /docs-static (when offline assets exist)."""
    if OFFLINE_ASSETS is not None:
        app.mount(DOCS_STATIC, StaticFiles(directory=OFFLINE_ASSETS), name="docs-static")
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")


@router.get("/healthz", response_model=schemas.Health, tags=["ops"])
def healthz(service: ServiceDep) -> schemas.Health:
    running, queued = service.runs.counts()
    settings = service.settings
    return schemas.Health(
        status="ok",
        version=VERSION,
        llm=service.llm_info(),
        sandbox=service.isolation(),
        sessions=len(service.sessions),
        runs_active=running,
        runs_queued=queued,
        store="postgresql" if settings.database_url else "sqlite",
        robots=list(service.robots),
    )


@router.get(
    "/metrics",
    response_class=Response,  # not PlainTextResponse: that would make the declared 401 text/plain too
    tags=["ops"],
    dependencies=[Depends(check_token)],
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"},
        **UNAUTHORIZED,
    },
)
def metrics(service: ServiceDep) -> PlainTextResponse:
    running, queued = service.runs.counts()
    text = service.metrics.render(len(service.sessions), running, queued)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """No icon: said with 204, so a browser's console shows no 404 on every page load."""
    return Response(status_code=204)


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    if OFFLINE_ASSETS is None:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Capstan API")
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Capstan API",
        swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
    )


@router.get("/redoc", include_in_schema=False)
def redoc() -> HTMLResponse:
    if OFFLINE_ASSETS is None:
        return get_redoc_html(openapi_url="/openapi.json", title="Capstan API")
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Capstan API",
        redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
        with_google_fonts=False,
    )
