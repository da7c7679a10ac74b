"""Routes for a session's skills: list, export, import, delete.

A skill is a function the session keeps (see capstan.lmp.skills). Imports pass the checks that
generated code passes (Engine.import_skills) and are all or nothing; the session is saved at once,
so imported skills survive a restart like learned ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from capstan.lmp.engine import Engine
from capstan.lmp.skills import SkillError
from capstan.service import schemas
from capstan.service.deps import ServiceDep, SessionDep
from capstan.service.responses import BAD_BODY, BUSY, error_response, unprocessable

router = APIRouter(tags=["skills"])
NOT_FOUND = error_response(404, "no such session (or skill), or the service has no engine")


def engine_of(session: SessionDep, service: ServiceDep) -> Engine:
    """The session's code-generation engine (which keeps its skills), or 404."""
    engine = session.engine or service.engine
    if engine is None:
        raise HTTPException(404, "this service has no code-generation engine, so no skills")
    return engine


EngineDep = Annotated[Engine, Depends(engine_of)]


def listing(engine: Engine) -> list[schemas.Skill]:
    return [
        schemas.Skill(name=s.name, signature=s.signature, doc=s.doc, uses=s.uses, code=s.code)
        for s in engine.skills.all()
    ]


@router.get("/sessions/{session_id}/skills", response_model=schemas.SkillList, responses=NOT_FOUND)
def list_skills(engine: EngineDep) -> schemas.SkillList:
    """The session's skills, with their signatures and code."""
    return schemas.SkillList(skills=listing(engine))


@router.get("/sessions/{session_id}/skills/export", response_model=schemas.SkillExport, responses=NOT_FOUND)
def export_skills(engine: EngineDep) -> schemas.SkillExport:
    """The session's skills in the form POST .../skills takes (for another session or server)."""
    skills = engine.skills.all()
    return schemas.SkillExport(
        skills=[schemas.SkillIn(name=s.name, code=s.code, uses=s.uses) for s in skills]
    )


@router.post(
    "/sessions/{session_id}/skills",
    response_model=schemas.SkillImport,
    responses={**BAD_BODY, **NOT_FOUND, **BUSY},
)
def import_skills(
    session: SessionDep, engine: EngineDep, service: ServiceDep, body: schemas.SkillExport
) -> schemas.SkillImport:
    """Add skills from an export. Each must be one function of its name, not a stub, within
    CAPSTAN_MAX_CODE_BYTES, and pass the sandbox's static check; otherwise nothing is added and
    the 422 says which skill failed and why."""
    items = [{"name": s.name, "code": s.code} for s in body.skills]
    try:
        with session.changing_skills():
            names = engine.import_skills(items, session.api, service.settings.max_code_bytes)
    except SkillError as exc:
        raise unprocessable(str(exc), "skills") from None
    service.sessions.save(session)
    return schemas.SkillImport(imported=names, skills=listing(engine))


@router.delete("/sessions/{session_id}/skills/{name}", status_code=204, responses={**NOT_FOUND, **BUSY})
def delete_skill(name: str, session: SessionDep, engine: EngineDep, service: ServiceDep) -> Response:
    """Forget one skill; later prompts no longer offer it."""
    with session.changing_skills():
        removed = engine.skills.remove(name)
    if not removed:
        raise HTTPException(404, f"session {session.id!r} has no skill {name!r}")
    service.sessions.save(session)
    return Response(status_code=204)
