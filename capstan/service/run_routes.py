"""Routes for runs: start one (a command or a program), list them, read a trace, follow its events
(Server-Sent Events), cancel (e-stop), approve or reject a program awaiting approval, and fetch its
media (frames, GIF, MP4, and the videos of its rehearsals on a robot's twin).

SSE: each event is `id: <seq>`, `event: <type>`, `data: {"seq", "type", "t", "data"}`; past events
are replayed first (from `Last-Event-ID` + 1 when given), then live ones, then `end`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse

from capstan.service import schemas
from capstan.service.approvals import NotAwaitingApproval
from capstan.service.deps import (
    OperatorToken,
    RunRowDep,
    ServiceDep,
    SessionDep,
    find_session,
    run_row,
    signed_by,
)
from capstan.service.media import run_dir
from capstan.service.responses import (
    BAD_BODY,
    NOT_FOUND,
    OPERATOR_ONLY,
    RETRY_AFTER_S,
    TOO_MANY,
    error_response,
    unprocessable,
)
from capstan.service.runs import QueueFullError, Run, RunNotFound
from capstan.service.service import Service
from capstan.service.sessions import Session
from capstan.service.trace import assemble, summary

router = APIRouter(tags=["runs"])
KEEPALIVE_S = 15.0
END_SEQ = 10**9  # seq of the `end` made up for a run whose own `end` was never recorded

RUN_STARTED = {
    202: {"model": schemas.RunAccepted, "description": "run queued (without ?wait=true)"},
    200: {"model": schemas.Trace, "description": "finished run (with ?wait=true)"},
    **BAD_BODY,
    **NOT_FOUND,
    **TOO_MANY,
}
WAIT = Query(False, description="answer when the run ends, with its trace")


def trace_of(service: Service, run_id: str) -> dict:
    return assemble(run_row(run_id, service), service.store.events(run_id))


async def wait_end(run: Run) -> None:
    past, queue = run.hub.subscribe()
    try:
        if queue is None or any(ev["type"] == "end" for ev in past):
            return
        while (await queue.get())["type"] != "end":
            pass
    finally:
        run.hub.unsubscribe(queue)


async def start_run(
    service: Service,
    session: Session,
    kind: Literal["command", "program"],
    text: str,
    wait: bool,
    response: Response,
) -> schemas.RunAccepted | dict:
    try:
        run = service.runs.submit(session, kind, text)
    except QueueFullError as exc:
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(RETRY_AFTER_S["queue_full"])}
        ) from None
    if wait:
        await wait_end(run)
        return trace_of(service, run.id)
    response.status_code = 202
    return schemas.RunAccepted(
        run_id=run.id,
        session_id=session.id,
        status=run.status,
        trace_url=f"/v1/runs/{run.id}",
        events_url=f"/v1/runs/{run.id}/events",
    )


@router.post(
    "/sessions/{session_id}/commands",
    responses=RUN_STARTED,
    response_model=schemas.Trace | schemas.RunAccepted,
)
async def post_command(
    session: SessionDep,
    service: ServiceDep,
    body: schemas.CommandRequest,
    response: Response,
    wait: bool = WAIT,
):
    """Run a natural-language command: the model writes a policy program, which runs in the sandbox."""
    limit = service.settings.max_command_chars
    if len(body.text) > limit:
        raise unprocessable(
            f"command is {len(body.text)} characters; at most {limit} are allowed "
            "(CAPSTAN_MAX_COMMAND_CHARS)",
            "text",
        )
    return await start_run(service, session, "command", body.text, wait, response)


@router.post(
    "/sessions/{session_id}/programs",
    responses=RUN_STARTED,
    response_model=schemas.Trace | schemas.RunAccepted,
)
async def post_program(
    session: SessionDep,
    service: ServiceDep,
    body: schemas.ProgramRequest,
    response: Response,
    wait: bool = WAIT,
):
    """Run a policy program as given (no model involved), in the sandbox."""
    size, limit = len(body.code.encode()), service.settings.max_code_bytes
    if size > limit:
        raise unprocessable(
            f"program is {size} bytes; at most {limit} are allowed (CAPSTAN_MAX_CODE_BYTES)", "code"
        )
    return await start_run(service, session, "program", body.code, wait, response)


LIMIT = Query(50, ge=1, le=500, description="runs on this page")
BEFORE = Query(None, max_length=64, description="the page after this run: the previous page's `next`")


@router.get("/sessions/{session_id}/runs", response_model=schemas.RunList, responses=NOT_FOUND)
def session_runs(
    session_id: str, service: ServiceDep, limit: int = LIMIT, before: str | None = BEFORE
) -> schemas.RunList:
    """The session's runs, newest first (also those of a deleted session), a page at a time."""
    rows = _page(service, session_id, limit, before)
    if not rows and before is None:
        find_session(service, session_id)
    return _listing(rows, limit)


@router.get("/runs", response_model=schemas.RunList, responses=NOT_FOUND)
def recent_runs(service: ServiceDep, limit: int = LIMIT, before: str | None = BEFORE) -> schemas.RunList:
    """All sessions' runs, newest first, a page at a time."""
    return _listing(_page(service, None, limit, before), limit)


def _page(service: Service, session_id: str | None, limit: int, before: str | None) -> list[dict]:
    if before is not None and service.store.get_run(before) is None:
        raise HTTPException(404, f"no run {before!r} to list the runs after")
    return service.store.list_runs(session_id=session_id, limit=limit, before=before)


def _listing(rows: list[dict], limit: int) -> schemas.RunList:
    return schemas.RunList(
        runs=[schemas.RunSummary.model_validate(summary(r)) for r in rows],
        next=rows[-1]["id"] if len(rows) == limit else None,
    )


@router.get("/runs/{run_id}", response_model=schemas.Trace, responses=NOT_FOUND)
def get_run(row: RunRowDep, service: ServiceDep) -> dict:
    """The run's trace (docs/CONTRACTS.md "Trace"), as far as it has got."""
    return assemble(row, service.store.events(row["id"]))


@router.post("/runs/{run_id}/cancel", response_model=schemas.CancelResult, responses=NOT_FOUND)
def cancel_run(run_id: str, service: ServiceDep) -> schemas.CancelResult:
    """E-stop: stops the robot at once and kills the program; the run ends 'cancelled'."""
    try:
        status = service.runs.cancel(run_id)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return schemas.CancelResult(run_id=run_id, status=status)


DECIDED = {
    **BAD_BODY,
    **OPERATOR_ONLY,
    **NOT_FOUND,
    **error_response(409, "the run is not awaiting approval"),
}


def decide(service: Service, run_id: str, approved: bool, body: schemas.DecisionRequest, token: str | None):
    by, verified = signed_by(service, body.by, token)
    try:
        decision = service.runs.decide(run_id, body.attempt, approved, by, body.reason, verified)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except NotAwaitingApproval as exc:
        raise HTTPException(409, str(exc)) from None
    return schemas.DecisionResult(run_id=run_id, **decision.to_dict())


@router.post("/runs/{run_id}/approve", response_model=schemas.DecisionResult, responses=DECIDED)
def approve_run(
    row: RunRowDep, service: ServiceDep, body: schemas.DecisionRequest, token: str | None = OperatorToken
) -> schemas.DecisionResult:
    """Let the program a run is awaiting approval with move the robot; who and when go into the trace."""
    return decide(service, row["id"], True, body, token)


@router.post("/runs/{run_id}/reject", response_model=schemas.DecisionResult, responses=DECIDED)
def reject_run(
    row: RunRowDep, service: ServiceDep, body: schemas.DecisionRequest, token: str | None = OperatorToken
) -> schemas.DecisionResult:
    """Refuse the program a run is awaiting approval with: it never runs and the run fails
    (error kind `rejected`, no repair); who, when and why go into the trace."""
    return decide(service, row["id"], False, body, token)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: past events, then live ones, then 'end'",
        },
        **NOT_FOUND,
    },
)
async def run_events(
    row: RunRowDep,
    service: ServiceDep,
    last_event_id: str | None = Header(None, description="resume after this event's seq"),
) -> StreamingResponse:
    return StreamingResponse(
        sse_stream(service, row["id"], _event_seq(last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event_seq(last_event_id: str | None) -> int:
    """The seq a client resumes after; -1 (from the start) for a header that is no seq we sent."""
    text = (last_event_id or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return -1
    return int(text)


async def sse_stream(service: Service, run_id: str, after: int) -> AsyncIterator[str]:
    """Past events after `after`, then live ones until `end` (with keep-alive comments meanwhile)."""
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
            yield sse(
                {
                    "seq": END_SEQ,
                    "type": "end",
                    "t": 0,
                    "data": {"status": row.get("status"), "error": row.get("error")},
                }
            )
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


def sse(ev: dict) -> str:
    return f"id: {ev['seq']}\nevent: {ev['type']}\ndata: {json.dumps(ev)}\n\n"


def media_file(service: Service, run_id: str, name: str, media_type: str) -> FileResponse:
    try:
        path = run_dir(service.settings.media_dir, run_id) / name
    except ValueError:
        raise HTTPException(404, f"no run {run_id!r}") from None
    if not path.is_file():
        if service.store.get_run(run_id) is None:  # created with its run: a run always has a row
            raise HTTPException(404, f"no run {run_id!r}")
        raise HTTPException(
            404,
            f"run {run_id} has no {name} (media are written when the run ends; "
            "CAPSTAN_MEDIA=0 turns them off)",
        )
    return FileResponse(path, media_type=media_type)


def _media(media_type: str, what: str) -> dict:
    return {200: {"content": {media_type: {}}, "description": what}, **NOT_FOUND}


@router.get(
    "/runs/{run_id}/video.gif", response_class=FileResponse, responses=_media("image/gif", "the run's GIF")
)
def run_gif(run_id: str, service: ServiceDep) -> FileResponse:
    return media_file(service, run_id, "video.gif", "image/gif")


@router.get(
    "/runs/{run_id}/video.mp4", response_class=FileResponse, responses=_media("video/mp4", "the run's MP4")
)
def run_mp4(run_id: str, service: ServiceDep) -> FileResponse:
    return media_file(service, run_id, "video.mp4", "video/mp4")


@router.get(
    "/runs/{run_id}/frames/{index}.png",
    response_class=FileResponse,
    responses=_media("image/png", "frame `index` of the run"),
)
def run_frame(run_id: str, index: int, service: ServiceDep) -> FileResponse:
    return media_file(service, run_id, f"frames/{index}.png", "image/png")


@router.get(
    "/runs/{run_id}/rehearsals/{index}.gif",
    response_class=FileResponse,
    responses=_media("image/gif", "rehearsal `index` of the run on the robot's twin, as a GIF"),
)
def rehearsal_gif(run_id: str, index: int, service: ServiceDep) -> FileResponse:
    return media_file(service, run_id, f"rehearsals/{index}.gif", "image/gif")


@router.get(
    "/runs/{run_id}/rehearsals/{index}.mp4",
    response_class=FileResponse,
    responses=_media("video/mp4", "rehearsal `index` of the run on the robot's twin, as an MP4"),
)
def rehearsal_mp4(run_id: str, index: int, service: ServiceDep) -> FileResponse:
    return media_file(service, run_id, f"rehearsals/{index}.mp4", "video/mp4")
