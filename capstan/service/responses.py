"""What the routes answer besides success, declared once so /openapi.json and the handlers agree.

Every error answer has one body, `ErrorBody` ({"detail": str}), except 422, which always has FastAPI's
validation-error shape ({"detail": [{"loc", "msg", "type"}]}), whether pydantic or a route refused
the input (`unprocessable`).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from capstan.service.schemas import ErrorBody

RETRY_AFTER_S = {"sessions_full": 30, "queue_full": 5, "busy": 1, "robot": 5}


def error_response(code: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": description}}


BAD_BODY = error_response(400, "the body could not be read as JSON text (e.g. it is not UTF-8)")
UNAUTHORIZED = error_response(401, "missing or wrong bearer token (when CAPSTAN_API_TOKEN is set)")
NOT_FOUND = error_response(404, "no such session or run")
BUSY = error_response(409, "a run is using the session")
OPERATOR_ONLY = error_response(
    403,
    "not an operator: no operator's own token (X-Operator-Token), or `by` names someone else; or, as "
    "on every route, from another web page",
)
TOO_MANY = error_response(429, "full (sessions or run queue); see Retry-After")
OTHER_SITE = error_response(
    403,
    "from another web page (Origin names another origin than Host), or, without CAPSTAN_API_TOKEN, "
    "addressed to a name that is not loopback",
)
TOO_LARGE = error_response(413, "the request body is larger than CAPSTAN_MAX_BODY_BYTES")
UNAVAILABLE = error_response(503, "the robot is unreachable or busy; see Retry-After")


def unprocessable(message: str, *loc: str | int) -> HTTPException:
    """A 422 in FastAPI's own validation-error shape, so one schema describes every 422."""
    return HTTPException(422, [{"loc": ["body", *loc], "msg": message, "type": "value_error"}])


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 answer (for RequestValidationError), made JSON-safe: Python's json module reads
    NaN, Infinity and lone UTF-16 surrogates ("\\ud800"), and FastAPI's handler would echo such an
    input back and fail with a 500 writing it. A body sent as something else than JSON (which
    FastAPI reads as a string) is said to be so first."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [{"msg": str(exc)}]
    content_type = request.headers.get("content-type", "")
    about_body = any(tuple(e.get("loc") or ())[:1] == ("body",) for e in errors)
    if about_body and "json" not in content_type.lower():
        said = f"Content-Type {content_type[:100]!r}" if content_type else "no Content-Type"
        errors = [
            {
                "loc": ["header", "content-type"],
                "msg": f"the body must be JSON sent with Content-Type: application/json ({said} was sent)",
                "type": "content_type",
            },
            *errors,
        ]
    return JSONResponse({"detail": _writable(jsonable_encoder(errors))}, status_code=422)


def _writable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):  # a lone surrogate has no UTF-8: shown as its escape instead
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_writable(k): _writable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_writable(v) for v in value]
    return value
