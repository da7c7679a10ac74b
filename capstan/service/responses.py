"""What the routes answer besides success, declared once so /openapi.json and the handlers agree."""

from __future__ import annotations

from fastapi import HTTPException

from capstan.service import schemas

RETRY_AFTER_S = {"sessions_full": 30, "queue_full": 5, "busy": 1, "robot": 5}
UNAUTHORIZED = {401: {"model": schemas.Problem, "description": "missing or wrong bearer token (when CAPSTAN_API_TOKEN is set)"}}
NOT_FOUND = {404: {"model": schemas.Problem, "description": "no such session or run"}}
TOO_MANY = {429: {"model": schemas.Problem, "description": "full (sessions or run queue); see Retry-After"}}
UNAVAILABLE = {503: {"model": schemas.Problem, "description": "the robot is unreachable or busy; see Retry-After"}}
BUSY = {409: {"model": schemas.Problem, "description": "a run is using the session"}}


def unprocessable(message: str, *loc: str | int) -> HTTPException:
    """A 422 in FastAPI's own validation-error shape, so one schema describes every 422."""
    return HTTPException(422, [{"loc": ["body", *loc], "msg": message, "type": "value_error"}])
