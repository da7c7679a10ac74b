"""Request and response bodies of the HTTP API (so that /openapi.json tells the truth)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from capstan.primitives.scene_state import SceneState
from capstan.service.operators import OperatorsError, RobotAction, check_signature

RunStatus = Literal[
    "queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled", "interrupted"
]

# Request bodies are strict: JSON `true` is not the integer 1 and "3" is not 3, as the schema says;
# and NaN or Infinity (which Python's json reads) is no number.
REQUEST = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ObjectSpec(BaseModel):
    model_config = REQUEST
    name: str = Field(max_length=64, examples=["red block"])
    position: list[float] | None = Field(
        default=None, min_length=2, max_length=2, description="[x, y] metres"
    )


class SceneSpec(BaseModel):
    """Scene contract (docs/CONTRACTS.md): either explicit `objects` or counts of random `blocks`/`bowls`."""

    model_config = REQUEST
    objects: list[str | ObjectSpec] | None = Field(default=None, max_length=64)
    blocks: int | None = Field(default=None, ge=0, le=64)
    bowls: int | None = Field(default=None, ge=0, le=64)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)

    def spec(self) -> dict:
        return self.model_dump(exclude_none=True)

    def object_count(self) -> int:
        if self.objects is not None:
            return len(self.objects)
        return (self.blocks or 0) + (self.bowls or 0)


class DeclaredObject(BaseModel):
    """One object an operator says is on a real robot's table (docs/CONTRACTS.md "Declared scene")."""

    model_config = REQUEST
    kind: Literal["block", "bowl"] | None = Field(
        default=None, description="omit when the name reads '<color> <kind>'"
    )
    color: str | None = Field(default=None, max_length=20, description="omit when the name says it")
    position: list[float] = Field(
        min_length=2,
        max_length=3,
        description="[x, y] resting on the table, or [x, y, z]; table frame, metres",
    )
    orientation: list[float] | None = Field(
        default=None, min_length=4, max_length=4, description="quaternion [qx, qy, qz, qw]; default upright"
    )


DeclaredObjects = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=40)], DeclaredObject],
    Field(
        max_length=16,
        examples=[{"red block": {"position": [0.05, 0.45]}, "blue bowl": {"position": [-0.1, 0.5]}}],
    ),
]


class DeclareObjects(BaseModel):
    model_config = REQUEST
    objects: DeclaredObjects


class CreateSession(BaseModel):
    model_config = REQUEST
    robot: str = Field(
        default="sim",
        max_length=40,
        description="'sim' (the built-in PyBullet world) or a remote robot named in CAPSTAN_ROBOTS "
        "(GET /healthz lists them); a remote robot takes no scene.",
    )
    scene: SceneSpec = Field(
        default_factory=lambda: SceneSpec(blocks=3, bowls=3, seed=0),
        examples=[{"objects": ["red block", "blue bowl"], "seed": 7}],
    )
    objects: DeclaredObjects | None = Field(
        default=None,
        description="for a real robot without perception of its own (a Franka agent): the objects on "
        "its table as the operator declares them; declare again with PUT /v1/sessions/{id}/objects",
    )


class ResetSession(BaseModel):
    model_config = REQUEST
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="New seed; omit to keep the old one"
    )
    scene: SceneSpec | None = Field(default=None, description="New scene; omit to rebuild the current one")


class SessionOut(BaseModel):
    id: str
    robot: str
    scene: dict[str, Any]
    state: SceneState = Field(description="Scene state (docs/CONTRACTS.md)")
    created_at: float
    busy: bool = False


class SessionList(BaseModel):
    sessions: list[SessionOut]


class CommandRequest(BaseModel):
    model_config = REQUEST
    text: str = Field(
        min_length=1,
        description="Natural-language command (at most CAPSTAN_MAX_COMMAND_CHARS), with words in it",
        examples=["put the red block in the blue bowl"],
    )

    @field_validator("text")
    @classmethod
    def _has_words(cls, text: str) -> str:
        problem = command_text_problem(text)
        if problem:
            raise ValueError(problem)
        return text


def command_text_problem(text: str) -> str | None:
    """Why `text` is no command to ask the model about (the API's 422 and `capstan run`'s error)."""
    if not any(c.isalnum() for c in text):
        return "the command has no words in it"
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        return "the command has control characters in it"
    return None


class ProgramRequest(BaseModel):
    model_config = REQUEST
    code: str = Field(
        min_length=1,
        description="Policy program (at most CAPSTAN_MAX_CODE_BYTES)",
        examples=["put_first_on_second('red block', 'blue bowl')\nsay('done')"],
    )


class RunAccepted(BaseModel):
    run_id: str
    session_id: str
    status: RunStatus
    trace_url: str
    events_url: str


class ErrorInfo(BaseModel):
    kind: str
    message: str
    line: int | None = None


class RehearsalVideo(BaseModel):
    """A candidate program's dry run on a simulated twin of the robot, filmed (its `candidate`
    entry in `attempts` tells the rest)."""

    attempt: int
    index: int = Field(description="the candidate's index in its attempt")
    seconds: float | None = Field(default=None, description="how long the rehearsal took")
    rejected: str | None = Field(default=None, description="null: it passed; else why it was refused")
    gif: str | None = None
    mp4: str | None = None


class Media(BaseModel):
    frames: list[str] = []
    gif: str | None = None
    mp4: str | None = None
    rehearsals: list[RehearsalVideo] = Field(
        default=[], description="videos of the run's rehearsals on the robot's twin, in order"
    )


class ApprovalDecision(BaseModel):
    """An operator's answer (or "timeout", or "e-stop" for a run cancelled while it waited)."""

    approved: bool
    by: str
    at: float = Field(description="when, in seconds since the epoch")
    reason: str = ""
    verified: bool = Field(
        default=False,
        description="true when `by` was proven: an operator's own token (CAPSTAN_OPERATORS), or the "
        "service's own timeout or e-stop; false when `by` is only the name the request gave",
    )


class Approval(BaseModel):
    """A program put to an operator before it moves the robot (CAPSTAN_APPROVAL), with its dry runs."""

    attempt: int
    code: str
    dry_runs: list[dict[str, Any]] = Field(
        default=[], description="the rehearsed candidates (the `candidate` events' data); empty without"
    )
    requested_at: float
    decision: ApprovalDecision | None = Field(default=None, description="null while it waits")


class _Signed(BaseModel):
    """A request someone signs with `by`: a name they may use (not one the service signs with)."""

    @field_validator("by", check_fields=False)
    @classmethod
    def _usable(cls, by: str | None) -> str | None:
        if by is None:
            return None
        try:
            return check_signature(by)
        except OperatorsError as exc:
            raise ValueError(f"{exc}; sign with your own name") from None


class DecisionRequest(_Signed):
    model_config = REQUEST
    attempt: int = Field(
        ge=1,
        le=100,
        description="the attempt whose program you read (the trace's `approval.attempt`); a decision "
        "about another attempt is refused with 409",
    )
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="who decides ('timeout' and 'e-stop' are reserved for the service). Required without "
        "CAPSTAN_OPERATORS; with it, the name comes from the `X-Operator-Token` header and `by`, if "
        "given, must be that operator's",
        examples=["operator name"],
    )
    reason: str = Field(default="", max_length=2000, examples=["the bowl is not on the table"])


class OperatorRequest(_Signed):
    model_config = REQUEST
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the operator of the X-Operator-Token header; if given, it must be theirs",
    )


class RobotActionResult(BaseModel):
    session_id: str
    robot: str
    action: RobotAction
    by: str = Field(description="the operator whose token it was")
    at: float = Field(description="when, in seconds since the epoch")


class DecisionResult(ApprovalDecision):
    run_id: str


class Trace(BaseModel):
    """Full record of one run (docs/CONTRACTS.md "Trace")."""

    id: str
    session_id: str
    status: RunStatus
    kind: Literal["command", "program"]
    command: str | None = None
    code: str | None = None
    attempts: list[dict[str, Any]] = []
    llm_calls: list[dict[str, Any]] = []
    primitive_calls: list[dict[str, Any]] = []
    nested_lmp_calls: list[dict[str, Any]] = []  # {lmp, query, code, answer} per parse_obj_name(...) & co.
    said: list[str] = []
    error: ErrorInfo | None = None
    # a trace stored before the state had a declared shape (or sent by a remote agent that left a
    # key out) is still served as it was stored
    state_before: SceneState | dict[str, Any] | None = None
    state_after: SceneState | dict[str, Any] | None = None
    media: Media = Media()
    timings: dict[str, float | None] = {}
    scene: dict[str, Any] | None = None
    approval: Approval | None = Field(
        default=None, description="the latest program that waited for approval, and the decision"
    )
    events_dropped: int = Field(
        default=0,
        description="primitive calls and sayings beyond the first 2,000 of the run: counted, not recorded",
    )


class RunSummary(BaseModel):
    id: str
    session_id: str
    kind: str
    status: RunStatus
    command: str | None = None
    created_at: float | None = None
    ended_at: float | None = None
    error: ErrorInfo | None = None


class RunList(BaseModel):
    runs: list[RunSummary]
    next: str | None = Field(
        None,
        description="pass it as ?before= for the next page (it is the last run listed); null when "
        "this page is not full, so no run follows",
    )


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    llm: dict[str, Any]
    sandbox: dict[str, Any] = Field(description="Isolation layers in force (Sandbox.isolation)")
    sessions: int
    runs_active: int
    runs_queued: int
    store: str
    robots: list[str] = Field(default_factory=list, description="Robot names a session can use")


class Skill(BaseModel):
    """A function the session keeps: written by fgen for one of its commands and then run without
    error, or imported. Later prompts list it by signature; a call to it needs no new generation."""

    name: str
    signature: str
    doc: str = ""
    uses: int = 0
    code: str


class SkillList(BaseModel):
    skills: list[Skill]


class SkillIn(BaseModel):
    # an export's signature and doc are recomputed, not trusted
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(max_length=100, examples=["stack_in_order"])
    code: str = Field(max_length=200_000)
    uses: int = Field(default=0, ge=0)


class SkillExport(BaseModel):
    """What GET .../skills/export returns and POST .../skills accepts."""

    model_config = ConfigDict(strict=True, extra="forbid")
    version: Literal[1] = 1
    skills: list[SkillIn] = Field(max_length=256)


class SkillImport(BaseModel):
    imported: list[str]
    skills: list[Skill]


class CancelResult(BaseModel):
    run_id: str
    status: RunStatus | Literal["cancelling"] = Field(
        description="'cancelling' while the e-stop reaches a running program; else the run's status"
    )


class ErrorBody(BaseModel):
    """The body of every error answer except 422 (which has FastAPI's validation-error shape)."""

    detail: str = Field(examples=["no run 'abc'"])
