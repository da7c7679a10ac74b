"""FastAPI dependencies the routers share: the Service, the bearer token check, and lookups that 404.

`create_app` stores the Service on `app.state.service`; routes get it (and what they look up in it)
by declaring a parameter of one of the `...Dep` types below.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from capstan.service.responses import unprocessable
from capstan.service.service import Service
from capstan.service.sessions import Session


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]

_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer $CAPSTAN_API_TOKEN` (only when CAPSTAN_API_TOKEN is set)",
)
_query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="the same token as a query parameter, for EventSource and <img>",
)


def check_token(
    service: ServiceDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    query_token: Annotated[str | None, Security(_query_token)],
) -> None:
    """Pass when no token is configured, or the bearer header (else ?access_token=) carries it."""
    expected = service.settings.api_token
    if not expected:
        return
    given = bearer.credentials if bearer is not None else query_token or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            "missing or wrong bearer token (send 'Authorization: Bearer <CAPSTAN_API_TOKEN>')",
            headers={"WWW-Authenticate": "Bearer"},
        )


def find_session(service: Service, session_id: str) -> Session:
    """The session; SessionNotFound otherwise, which the app answers with 404 (api.session_gone)."""
    return service.sessions.get(session_id)


def session_of(session_id: str, service: ServiceDep) -> Session:
    return find_session(service, session_id)


SessionDep = Annotated[Session, Depends(session_of)]


def run_row(run_id: str, service: ServiceDep) -> dict:
    """The stored row of run `run_id` (any status), or 404."""
    row = service.store.get_run(run_id)
    if row is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return row


RunRowDep = Annotated[dict, Depends(run_row)]


OperatorToken = Header(
    None,
    alias="X-Operator-Token",
    description="the acting operator's own token (`capstan operators add NAME`); required when the "
    "service has CAPSTAN_OPERATORS",
)


def signed_by(
    service: Service, by: str | None, token: str | None, operators_only: bool = False
) -> tuple[str, bool]:
    """Who acts as an operator, and whether that is proven: the operator a token belongs to
    (CAPSTAN_OPERATORS), else only the name `by` states, which `operators_only` acts refuse."""
    if service.operators is None:
        if operators_only:
            raise HTTPException(
                403, "only an operator may do this, and this service has none (set CAPSTAN_OPERATORS)"
            )
        if by is None:
            raise unprocessable("say who you are: `by` is required", "by")
        return by, False
    name = service.operators.who(token) if token else None
    if name is None:
        raise HTTPException(
            403, "this needs an operator's own token in the X-Operator-Token header (CAPSTAN_OPERATORS)"
        )
    if by is not None and by != name:
        raise HTTPException(403, f"this token is operator {name!r}'s, not {by!r}'s")
    return name, True


_ACCESS_TOKEN = re.compile(r"(access(?:_|%5f)token=)[^&\s]*", re.IGNORECASE)  # as sent, or percent-encoded


def redact_access_tokens(record: logging.LogRecord) -> bool:
    """A logging filter for uvicorn's access log: the API token a page sends as ?access_token= (for
    EventSource and <img>) is written as *** instead."""
    if isinstance(record.args, tuple):
        record.args = tuple(_ACCESS_TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
    return True
