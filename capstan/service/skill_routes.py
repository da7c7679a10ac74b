"""Routes for a session's skills: list, export, import, delete.

A skill is a function the session keeps (see capstan.lmp.skills). Imports pass the checks that
generated code passes (Engine.import_skills) and are all or nothing; the session is saved at once,
so imported skills survive a restart like learned ones.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Response

from capstan.lmp.skills import SkillError
from capstan.service import schemas
from capstan.service.responses import unprocessable
from capstan.service.service import Service
from capstan.service.sessions import Session

NOT_FOUND = {404: {"model": schemas.Problem, "description": "no such session (or skill)"}}


def skill_routes(service: Service, session_or_404: Callable[[str], Session]) -> APIRouter:
    router = APIRouter(tags=["skills"])

    def engine_of(session: Session):
        engine = session.engine or service.engine
        if engine is None:
            raise HTTPException(404, "this service has no code-generation engine, so no skills")
        return engine

    def listing(session: Session) -> list[schemas.Skill]:
        return [schemas.Skill(name=s.name, signature=s.signature, doc=s.doc, uses=s.uses, code=s.code)
                for s in engine_of(session).skills.all()]  # fmt: skip

    @router.get("/sessions/{session_id}/skills", response_model=schemas.SkillList, responses=NOT_FOUND)
    def list_skills(session_id: str) -> schemas.SkillList:
        """The session's skills, with their signatures and code."""
        return schemas.SkillList(skills=listing(session_or_404(session_id)))

    @router.get("/sessions/{session_id}/skills/export", response_model=schemas.SkillExport, responses=NOT_FOUND)
    def export_skills(session_id: str) -> schemas.SkillExport:
        """The session's skills in the form POST .../skills takes (for another session or server)."""
        skills = engine_of(session_or_404(session_id)).skills.all()
        return schemas.SkillExport(skills=[schemas.SkillIn(name=s.name, code=s.code, uses=s.uses) for s in skills])

    @router.post("/sessions/{session_id}/skills", response_model=schemas.SkillImport, responses=NOT_FOUND)
    def import_skills(session_id: str, body: schemas.SkillExport) -> schemas.SkillImport:
        """Add skills from an export. Each must be one function of its name, not a stub, within
        CAPSTAN_MAX_CODE_BYTES, and pass the sandbox's static check; otherwise nothing is added and
        the 422 says which skill failed and why."""
        session = session_or_404(session_id)
        engine = engine_of(session)
        items = [{"name": s.name, "code": s.code} for s in body.skills]
        try:
            names = engine.import_skills(items, session.api, service.settings.max_code_bytes)
        except SkillError as exc:
            raise unprocessable(str(exc), "skills") from None
        service.sessions.save(session)
        return schemas.SkillImport(imported=names, skills=listing(session))

    @router.delete("/sessions/{session_id}/skills/{name}", status_code=204, responses=NOT_FOUND)
    def delete_skill(session_id: str, name: str) -> Response:
        """Forget one skill; later prompts no longer offer it."""
        session = session_or_404(session_id)
        if not engine_of(session).skills.remove(name):
            raise HTTPException(404, f"session {session_id!r} has no skill {name!r}")
        service.sessions.save(session)
        return Response(status_code=204)

    return router
