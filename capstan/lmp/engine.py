"""The command loop: prompt -> code -> hierarchical generation -> static checks -> sandbox run,
with self-repair.

Repair: a failed static check or a runtime error goes back to the model as a structured message
(kind, message, line and its text, and which objects moved before the error) for a corrected
program, up to `max_attempts` programs in all. Before a retry, the world is restored to the
snapshot taken before the command when the backend supports it, so every attempt starts from the
scene its prompt describes (a real robot without snapshots simply continues from where it is; the
repair message then lists what moved).

Dry runs: with a `rehearsal`, each program is first rehearsed where nothing real moves (lmp.rehearsal).
With `require_rehearsal` (a real robot) every program is, hand-written ones too, and none runs for
real when it cannot be rehearsed (RehearsalUnavailable becomes the run's `not_rehearsed` error).
"""

from __future__ import annotations

import ast
import builtins
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from keyword import iskeyword

from capstan.llm.base import CompletionRequest, LLMError, LLMProvider
from capstan.lmp.approval import ApprovalGate
from capstan.lmp.calls import Cancelled, EventFn, LLMCall, LLMCaller
from capstan.lmp.checks import Problem, is_stub
from capstan.lmp.conversation import Conversation, Turn
from capstan.lmp.executor import PolicyExecutor
from capstan.lmp.extract import extract_code
from capstan.lmp.nested import policy_api_text
from capstan.lmp.prompt import (
    LMP_NAMES,
    PromptSpec,
    build_lead_request,
    build_request,
    load_prompt,
    with_feedback,
)
from capstan.lmp.rehearsal import DryRun, Rehearsal, choose, is_compositional, judge
from capstan.lmp.runner import Prepared, RunContext, line_text, line_with_suggested_point, splice_fix
from capstan.lmp.scene import position_diff, restore, scene_objects, snapshot
from capstan.lmp.skills import SkillError, SkillLibrary
from capstan.primitives.api import PolicyAPI
from capstan.primitives.outcome import ErrorKind, RunError, RunStatus
from capstan.primitives.rehearsal import RehearsalUnavailable


@dataclass
class Attempt:
    """One program of a command and how it went (the `attempt` event tells the same)."""

    attempt: int  # 1, 2, ...: the first program, then the repairs
    code: str
    error: RunError | None
    candidates: list[DryRun] | None = None  # the programs rehearsed in dry runs, when there were any
    chosen: int | None = None  # the index of the candidate that ran for real; None: every one was refused

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CommandOutcome:
    status: RunStatus  # SUCCEEDED, FAILED or CANCELLED
    code: str  # the final program, generated functions included
    attempts: list[Attempt] = field(default_factory=list)
    error: RunError | None = None
    said: list[str] = field(default_factory=list)
    llm_calls: list[LLMCall] = field(default_factory=list)
    candidates: int = 0  # programs rehearsed in dry runs (0 without a rehearsal)


class Engine:
    def __init__(
        self,
        llm: LLMProvider,
        sandbox: PolicyExecutor,
        prompts: dict[str, PromptSpec] | None = None,
        max_attempts: int = 3,
        max_fn_depth: int = 3,
        max_fns: int = 8,
        skills: SkillLibrary | None = None,
        timeout_s: float = 180.0,
        rehearsal: Rehearsal | None = None,
        candidates: int = 3,
        sample_compositional: bool = False,
        require_rehearsal: bool = False,
    ):
        if max_attempts < 1 or candidates < 1:
            raise ValueError("max_attempts and candidates must be at least 1")
        self.llm = llm
        self.sandbox = sandbox
        self.prompts = {n: (prompts or {}).get(n) or load_prompt(n) for n in LMP_NAMES}
        self.max_attempts = max_attempts
        self.max_fn_depth = max_fn_depth
        self.max_fns = max_fns
        self.skills = skills if skills is not None else SkillLibrary()
        self.timeout_s = timeout_s
        self.rehearsal = rehearsal  # None: programs run for real with no dry run first
        self.candidates = candidates  # programs per command when more than the greedy one is wanted
        # also for a compositional command whose first program passed its dry run (else only when refused)
        self.sample_compositional = sample_compositional
        # a real robot: no program (generated or hand-written) moves it without a passing dry run
        self.require_rehearsal = require_rehearsal

    # ---- public -----------------------------------------------------------------------------

    def run_command(
        self,
        text: str,
        api: PolicyAPI,
        conversation: Conversation | None = None,
        on_event: EventFn | None = None,
        cancel: threading.Event | None = None,
        approval: ApprovalGate | None = None,
    ) -> CommandOutcome:
        """`approval`: asked before each program moves the robot for real (None: nobody is asked)."""
        conversation = conversation if conversation is not None else Conversation()
        ctx, emit = self._context(api, conversation, on_event, cancel)
        said0 = len(api.said)
        snap = snapshot(api)
        spec, api_text, objects, positions, history, skills = self._prompt_inputs(api, conversation)
        request = build_request(spec, api_text, text, objects, positions, history, skills)
        attempts: list[Attempt] = []
        program, error = "", None
        tried: set[str] = set()
        try:
            rehearse = self._rehearses(api)
            for n in range(1, self.max_attempts + 1):
                completion = ctx.caller("tabletop_ui", request).text
                code = (
                    extract_code(completion)
                    if n == 1
                    else splice_fix(program, extract_code(completion), error)
                )
                if n > 1 and _shape(code) in tried:  # the failed program again: ask for another, sampled
                    again = with_feedback(request, completion, REPEATED)
                    completion = ctx.caller(
                        "tabletop_ui", replace(again, temperature=SAMPLE_TEMPERATURE)
                    ).text
                    code = splice_fix(program, extract_code(completion), error)
                tried.add(_shape(code))
                advisory = text if n == 1 else None  # the superlative lint only gets one say
                # more candidates only for the command as first asked: a repair answers one error
                alternatives = request if rehearse and n == 1 else None
                program, error, prepared, moved = self._attempt(
                    n, code, ctx, emit, attempts, advisory, rehearse, alternatives, approval
                )
                if error is None:
                    self._learn(prepared)
                    break
                if error.kind in _NO_REPAIR or n == self.max_attempts:
                    break
                if moved is None:  # it ran for real: what moved, and put the world back
                    moved = position_diff(positions, scene_objects(api)[1])
                    reset = snap is not None and error.kind not in _NOT_RUN
                    if reset:
                        restore(api, snap)
                else:  # refused in its dry run: the world never changed
                    reset = False
                request = _with_repair(request, text, completion, error, program, moved, reset)
        except Cancelled:
            error = _CANCELLED
        except LLMError as exc:
            error = _llm_error(exc)
        except RehearsalUnavailable as exc:
            error = _not_rehearsed(exc)
        status = _status(error)
        conversation.add(Turn(text, program, status, list(api.said[said0:]), snap, is_undo=ctx.used_undo))
        return self._outcome(status, program, attempts, error, api, said0, ctx)

    def run_program(
        self,
        code: str,
        api: PolicyAPI,
        on_event: EventFn | None = None,
        cancel: threading.Event | None = None,
        approval: ApprovalGate | None = None,
    ) -> CommandOutcome:
        """Run hand-written or edited code once (undefined functions still get generated)."""
        ctx, emit = self._context(api, None, on_event, cancel)
        said0 = len(api.said)
        attempts: list[Attempt] = []
        try:
            program, error, prepared, _ = self._attempt(1, code, ctx, emit, attempts, approval=approval)
            if error is None:
                self._learn(prepared)
        except Cancelled:
            program, error = code, _CANCELLED
        except LLMError as exc:
            program, error = code, _llm_error(exc)
        except RehearsalUnavailable as exc:
            program, error = code, _not_rehearsed(exc)
        return self._outcome(_status(error), program, attempts, error, api, said0, ctx)

    def next_command_lead(self, api: PolicyAPI, conversation: Conversation) -> CompletionRequest | None:
        """How the request for this conversation's next command will begin (prefix, scene, earlier
        turns), for the model to read ahead with `LLMProvider.prefill` (None: not known ahead)."""
        return build_lead_request(*self._prompt_inputs(api, conversation))

    def _prompt_inputs(self, api: PolicyAPI, conversation: Conversation) -> tuple:
        """What a command's request is built from besides the command: prompt, API text, scene,
        earlier turns, skills. One place, so the request read ahead is the one a command starts with."""
        objects, positions = scene_objects(api)
        api_text = {"api": policy_api_text(api)}
        return (
            self.prompts["tabletop_ui"],
            api_text,
            objects,
            positions,
            conversation.history(),
            self.skills.signatures(),
        )

    def import_skills(self, items: list[dict], api: PolicyAPI, max_bytes: int) -> list[str]:
        """Add skills from an export ({"name", "code"} each) after the checks generated code
        passes: one function of that name, not a stub, within `max_bytes`, and the sandbox's static
        check against the names a program may use. All or nothing; SkillError says what failed."""
        ctx, _ = self._context(api, None, None, None)
        names = [n for item in items if isinstance(item, dict) and isinstance(n := item.get("name"), str)]
        if len(names) != len(items) or not all(n.isidentifier() and not iskeyword(n) for n in names):
            raise SkillError("every skill needs a 'name' that is a Python identifier and its 'code'")
        if len(set(names)) != len(names):
            twice = next(n for n, count in Counter(names).items() if count > 1)
            raise SkillError(f"skill {twice!r} appears twice in one import")
        # a skill named like a primitive, a nested LMP or a builtin would be listed to the model under
        # a name the program already means something else by
        provided = (ctx.known_names() - set(self.skills.names())) | set(dir(builtins))
        taken = [n for n in names if n in provided]
        if taken:
            raise SkillError(f"skill {taken[0]!r}: that name is already provided to programs; rename it")
        if len(set(names) | set(self.skills.names())) > self.skills.max_skills:
            raise SkillError(f"a session keeps at most {self.skills.max_skills} skills")
        known = ctx.known_names() | set(self.skills.names()) | set(names)
        staged = SkillLibrary(max_skills=len(items) or 1)
        for item in items:
            name, code = item["name"], item.get("code")
            if not isinstance(code, str) or len(code.encode()) > max_bytes:
                raise SkillError(f"skill {name!r}: 'code' must be text of at most {max_bytes} bytes")
            staged.add(name, code)  # one function of that name, or SkillError
            if is_stub(code, name):
                raise SkillError(f"skill {name!r} does nothing (its body is only pass, ..., or a docstring)")
            problems = self.sandbox.check(code, sorted(known | self.sandbox.star_names(code)))
            if problems:
                p = problems[0]
                raise SkillError(f"skill {name!r}, line {p.line}: {p.message}")
        for item in items:
            self.skills.add(item["name"], item["code"])
        return names

    # ---- steps ------------------------------------------------------------------------------

    def _context(
        self,
        api: PolicyAPI,
        conversation: Conversation | None,
        on_event: EventFn | None,
        cancel: threading.Event | None,
    ) -> tuple[RunContext, EventFn]:
        def emit(kind: str, payload: dict) -> None:
            if on_event is not None:
                on_event(kind, payload)

        caller = LLMCaller(self.llm, emit, cancel)
        ctx = RunContext(
            api,
            self.sandbox,
            caller,
            self.prompts,
            self.skills,
            conversation,
            cancel,
            self.max_fn_depth,
            self.max_fns,
            self.timeout_s,
        )
        return ctx, emit

    def _attempt(
        self,
        n: int,
        code: str,
        ctx: RunContext,
        emit: EventFn,
        attempts: list[Attempt],
        command: str | None = None,
        rehearse: bool = False,
        alternatives: CompletionRequest | None = None,
        approval: ApprovalGate | None = None,
    ) -> tuple[str, RunError | None, Prepared | None, list[str] | None]:
        """One program: prepare, check, (rehearse,) run. Returns (program, error or None, prepared,
        what moved in a dry run that refused it, or None when it was not refused in a dry run).
        With `alternatives`, more candidates may be sampled from that request."""
        if not code.strip():
            error = RunError(ErrorKind.NO_CODE, "the answer contained no Python code")
            emit("code", {"attempt": n, "code": "", "functions": {}})
            return self._record(n, "", error, emit, attempts), error, None, None
        prepared = ctx.prepare(code, command)
        emit("code", {"attempt": n, "code": prepared.program, "functions": prepared.functions})
        if self.require_rehearsal:  # also a hand-written program; raises when it cannot be rehearsed
            rehearse = self._rehearses(ctx.api)
        if not rehearse:
            error = (
                _check_error(prepared.problems)
                or _approve(approval, emit, n, prepared.program, [])
                or ctx.execute(prepared.program)[1]
            )
            return self._record(n, prepared.program, error, emit, attempts), error, prepared, None
        first = self._dry_run(
            ctx, emit, n, DryRun(0, "greedy" if n == 1 else "repair", prepared.program), prepared
        )
        pool = [(first, prepared)]
        refused_in_dry_run = first.rejected not in (None, "check")  # a static check's refusal goes to repair
        compositional = self.sample_compositional and is_compositional(code, first, prepared.generated)
        if alternatives is not None and (refused_in_dry_run or compositional):
            pool += self._alternatives(n, alternatives, ctx, emit, pool, command)
        winner, votes = choose([d for d, _ in pool])
        if len(pool) > 1:
            emit(
                "selection",
                {
                    "attempt": n,
                    "chosen": None if winner is None else winner.index,
                    "agreeing": votes,
                    "candidates": len(pool),
                },
            )
        dry_runs = [d for d, _ in pool]
        if winner is None:
            error = first.error
            self._record(n, prepared.program, error, emit, attempts, dry_runs, None)
            return prepared.program, error, prepared, first.moved
        chosen = {d.index: p for d, p in pool}[winner.index]
        if chosen is not prepared:
            emit(
                "code",
                {
                    "attempt": n,
                    "code": chosen.program,
                    "functions": chosen.functions,
                    "candidate": winner.index,
                },
            )
        # the real run, once approved (when a person must approve)
        error = _approve(approval, emit, n, chosen.program, dry_runs) or ctx.execute(chosen.program)[1]
        self._record(n, chosen.program, error, emit, attempts, dry_runs, winner.index)
        return chosen.program, error, chosen, None

    def _rehearses(self, api: PolicyAPI) -> bool:
        """Whether programs on `api` get a dry run before they run for real. Where one is required
        and none can happen, RehearsalUnavailable: nothing runs."""
        if self.rehearsal is not None and self.rehearsal.can_rehearse(api):
            return True
        if self.require_rehearsal:
            raise RehearsalUnavailable(
                f"a program runs on this robot ({type(api.backend).__name__}) only after a passing dry "
                "run, and no rehearsal fits it; nothing was run"
            )
        return False

    def _alternatives(
        self,
        n: int,
        request: CompletionRequest,
        ctx: RunContext,
        emit: EventFn,
        pool: list[tuple[DryRun, Prepared]],
        command: str | None,
    ) -> list[tuple[DryRun, Prepared]]:
        """Sampled candidates (seeded, so cassettes replay them), each prepared, checked and
        rehearsed; one that repeats an earlier candidate shares its dry run."""
        seen = {_shape(p.program): d for d, p in pool}
        out: list[tuple[DryRun, Prepared]] = []
        for index in range(1, self.candidates):
            sampled = replace(request, temperature=SAMPLE_TEMPERATURE, seed=index)
            code = extract_code(ctx.caller("tabletop_ui", sampled).text)
            prepared = ctx.prepare(code, command) if code.strip() else Prepared("", problems=[_NO_CODE])
            dry = DryRun(index, "sampled", prepared.program, seed=index)
            earlier = seen.get(_shape(prepared.program))
            if earlier is not None:
                dry = replace(earlier, index=index, source="sampled", seed=index)
                emit("candidate", {"attempt": n, **dry.summary(), "same_as": earlier.index})
            else:
                dry = self._dry_run(ctx, emit, n, dry, prepared)
                seen[_shape(prepared.program)] = dry
            out.append((dry, prepared))
        return out

    def _dry_run(self, ctx: RunContext, emit: EventFn, n: int, dry: DryRun, prepared: Prepared) -> DryRun:
        """Rehearse one prepared candidate (unless a static check refused it) and judge it."""
        t0 = time.monotonic()
        problem = _check_error(prepared.problems)
        frames: list = []
        if problem is not None:
            dry.rejected, dry.error = ErrorKind.CHECK, problem
        else:
            if self.rehearsal is None:
                raise RehearsalUnavailable("a dry run needs a rehearsal")
            rehearsed = self.rehearsal.rehearse(ctx.api, lambda: ctx.execute(prepared.program, dry=True)[1])
            judge(dry, rehearsed)
            frames = rehearsed.frames  # the service makes them the rehearsal's video
        dry.seconds = time.monotonic() - t0
        emit("candidate", {"attempt": n, **dry.summary(), **({"frames": frames} if frames else {})})
        return dry

    @staticmethod
    def _record(
        n: int,
        program: str,
        error: RunError | None,
        emit: EventFn,
        attempts: list[Attempt],
        candidates: list[DryRun] | None = None,
        chosen: int | None = None,
    ) -> str:
        attempts.append(Attempt(n, program, error, candidates, chosen))
        emit(
            "attempt",
            {
                "attempt": n,
                "ok": error is None,
                "error": error.to_dict() if error else None,
                **({"candidates": len(candidates), "chosen": chosen} if candidates else {}),
            },
        )
        return program

    def _learn(self, prepared: Prepared | None) -> None:
        if prepared is None:
            return
        for name in prepared.generated:
            if name in prepared.functions and not is_stub(prepared.functions[name], name):
                self.skills.add(name, prepared.functions[name])

    @staticmethod
    def _outcome(
        status: RunStatus,
        program: str,
        attempts: list[Attempt],
        error: RunError | None,
        api: PolicyAPI,
        said0: int,
        ctx: RunContext,
    ) -> CommandOutcome:
        said = list(api.said[said0:])
        rehearsed = sum(len(a.candidates or ()) for a in attempts)
        return CommandOutcome(status, program, attempts, error, said, list(ctx.caller.log), rehearsed)


# refused before anything ran
_NOT_RUN = frozenset({ErrorKind.CHECK, ErrorKind.NO_CODE, ErrorKind.SYNTAX, ErrorKind.VIOLATION})
_NO_REPAIR = frozenset({ErrorKind.CANCELLED, ErrorKind.REJECTED})  # stopped or refused by a person
_CANCELLED = RunError(ErrorKind.CANCELLED, "the run was cancelled")
REPEATED = (
    "That is the same program that just failed, and it would fail the same way. Write a different "
    "program: change what the error points at (use a position or name the error suggests, if any)."
)
# errors that say the command may ask for more than the table or the arm allows
_REACH_ERRORS = ("OutOfWorkspaceError", "UnreachableError", "EnvelopeError")
BEYOND_REACH = (
    "If the command asks for more than can be done here, do the part that can be done, then say() "
    "what could not be done and why."
)
SAMPLE_TEMPERATURE = 0.7  # for a program other than the greedy one: a repeated repair, another candidate
_NO_CODE = Problem(None, "the answer contained no Python code")


def _llm_error(exc: LLMError) -> RunError:
    return RunError(ErrorKind.LLM, f"{type(exc).__name__}: {exc}")


def _not_rehearsed(exc: RehearsalUnavailable) -> RunError:
    return RunError(ErrorKind.NOT_REHEARSED, f"not run on the robot: {exc}")


def _check_error(problems: list[Problem]) -> RunError | None:
    if not problems:
        return None
    p = problems[0]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return RunError(ErrorKind.CHECK, p.message + more, p.line)


def _approve(
    gate: ApprovalGate | None, emit: EventFn, n: int, program: str, dry_runs: list[DryRun]
) -> RunError | None:
    """Ask `gate` whether `program` may run for real (None: no gate, or approved). The request and
    the decision (who, when, why) are events, so the trace keeps both."""
    if gate is None:
        return None
    summaries = [d.summary() for d in dry_runs]
    emit("approval", {"attempt": n, "code": program, "dry_runs": summaries})
    decision = gate.decide(n, program, summaries)
    emit("decision", {"attempt": n, **decision.to_dict()})
    return decision.error()


def _shape(code: str) -> str:
    """A program's structure, blind to comments and layout."""
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return " ".join(code.split())


def _beyond_reach(error: RunError) -> bool:
    if error.kind == ErrorKind.LEFT_WORKSPACE:
        return True
    return error.kind == ErrorKind.PRIMITIVE and error.message.startswith(_REACH_ERRORS)


def _status(error: RunError | None) -> RunStatus:
    if error is None:
        return RunStatus.SUCCEEDED
    return RunStatus.CANCELLED if error.kind == ErrorKind.CANCELLED else RunStatus.FAILED


def _with_repair(
    request: CompletionRequest,
    command: str,
    completion: str,
    error: RunError,
    program: str,
    moved: list[str],
    reset: bool,
) -> CompletionRequest:
    """The same conversation plus the failed answer and what went wrong."""
    where = ""
    if error.line:
        where = f"\nat line {error.line}: `{line_text(program, error.line)}`"
    lines = [f"That program failed.\nerror ({error.kind}): {error.message}{where}"]
    if moved:
        lines.append("before the error: " + "; ".join(moved))
    if reset:
        lines.append("The world has been put back as it was before the command.")
    fixed = line_with_suggested_point(program, error)
    if fixed is not None:
        lines.append(f"Line {error.line} with the point the error names: `{fixed}`")
    if _beyond_reach(error):
        lines.append(BEYOND_REACH)
    lines.append(
        f"Write the whole corrected program for the command {command!r}, every line of it, changed where the "
        "error points (a position or name the error suggests is safe to use). Reply with code only."
    )
    return with_feedback(request, completion, "\n".join(lines))
