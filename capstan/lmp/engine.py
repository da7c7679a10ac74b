"""The command loop: prompt -> code -> hierarchical generation -> static checks -> sandbox run,
with self-repair.

Repair: a failed static check or a runtime error goes back to the model as a structured message
(kind, message, line and its text, and which objects moved before the error) for a corrected
program, up to `max_attempts` programs in all. Before a retry, the world is restored to the
snapshot taken before the command when the backend supports it, so every attempt starts from the
scene its prompt describes (a real robot without snapshots simply continues from where it is; the
repair message then lists what moved).
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from capstan.llm.base import CompletionRequest, LLMError, LLMProvider
from capstan.lmp.calls import Cancelled, EventFn, LLMCaller
from capstan.lmp.checks import is_stub
from capstan.lmp.conversation import Conversation, Turn
from capstan.lmp.extract import extract_code
from capstan.lmp.nested import policy_api_text
from capstan.lmp.prompt import (
    LMP_NAMES,
    PromptSpec,
    build_request,
    load_prompt,
    with_feedback,
)
from capstan.lmp.runner import Prepared, RunContext, line_text, splice_fix
from capstan.lmp.scene import position_diff, restore, scene_objects, snapshot
from capstan.lmp.skills import SkillLibrary


@dataclass
class CommandOutcome:
    status: str  # "succeeded" | "failed" | "cancelled"
    code: str  # the final program, generated functions included
    attempts: list[dict] = field(default_factory=list)
    error: dict | None = None  # {kind, message, line}
    said: list[str] = field(default_factory=list)
    llm_calls: list[dict] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        llm: LLMProvider,
        sandbox: Any,
        prompts: dict[str, PromptSpec] | None = None,
        max_attempts: int = 3,
        max_fn_depth: int = 3,
        max_fns: int = 8,
        skills: SkillLibrary | None = None,
        timeout_s: float = 180.0,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.llm = llm
        self.sandbox = sandbox
        self.prompts = {n: (prompts or {}).get(n) or load_prompt(n) for n in LMP_NAMES}
        self.max_attempts = max_attempts
        self.max_fn_depth = max_fn_depth
        self.max_fns = max_fns
        self.skills = skills if skills is not None else SkillLibrary()
        self.timeout_s = timeout_s

    # ---- public -----------------------------------------------------------------------------

    def run_command(self, text: str, api: Any, conversation: Conversation | None = None,
                    on_event: EventFn | None = None, cancel: threading.Event | None = None) -> CommandOutcome:  # fmt: skip
        conversation = conversation if conversation is not None else Conversation()
        ctx, emit = self._context(api, conversation, on_event, cancel)
        said0 = len(getattr(api, "said", []))
        snap = snapshot(api)
        objects, positions = scene_objects(api)
        spec = self.prompts["tabletop_ui"]
        request = build_request(spec, {"api": policy_api_text(api)}, text, objects, positions,
                                conversation.history(), self.skills.signatures())  # fmt: skip
        attempts: list[dict] = []
        program, error = "", None
        tried: set[str] = set()
        try:
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
                        "tabletop_ui", replace(again, temperature=REPAIR_TEMPERATURE)
                    ).text
                    code = splice_fix(program, extract_code(completion), error)
                tried.add(_shape(code))
                advisory = text if n == 1 else None  # the superlative lint only gets one say
                program, error, prepared = self._attempt(n, code, ctx, emit, attempts, advisory)
                if error is None:
                    self._learn(prepared)
                    break
                if error["kind"] == "cancelled" or n == self.max_attempts:
                    break
                moved = position_diff(positions, scene_objects(api)[1])
                reset = snap is not None and error["kind"] not in _NOT_RUN  # it may hold or have moved things
                if reset:
                    restore(api, snap)
                request = _with_repair(request, text, completion, error, program, moved, reset)
        except Cancelled:
            error = {"kind": "cancelled", "message": "the run was cancelled", "line": None}
        except LLMError as exc:
            error = {"kind": "llm", "message": f"{type(exc).__name__}: {exc}", "line": None}
        status = _status(error)
        conversation.add(Turn(text, program, status, list(getattr(api, "said", [])[said0:]), snap,
                              is_undo=ctx.used_undo))  # fmt: skip
        return self._outcome(status, program, attempts, error, api, said0, ctx)

    def run_program(self, code: str, api: Any, on_event: EventFn | None = None,
                    cancel: threading.Event | None = None) -> CommandOutcome:  # fmt: skip
        """Run hand-written or edited code once (undefined functions still get generated)."""
        ctx, emit = self._context(api, None, on_event, cancel)
        said0 = len(getattr(api, "said", []))
        attempts: list[dict] = []
        try:
            program, error, prepared = self._attempt(1, code, ctx, emit, attempts)
            if error is None:
                self._learn(prepared)
        except Cancelled:
            program, error = code, {"kind": "cancelled", "message": "the run was cancelled", "line": None}
        except LLMError as exc:
            program, error = code, {"kind": "llm", "message": f"{type(exc).__name__}: {exc}", "line": None}
        return self._outcome(_status(error), program, attempts, error, api, said0, ctx)

    # ---- steps ------------------------------------------------------------------------------

    def _context(self, api, conversation, on_event, cancel) -> tuple[RunContext, EventFn]:
        def emit(kind: str, payload: dict) -> None:
            if on_event is not None:
                on_event(kind, payload)

        caller = LLMCaller(self.llm, emit, cancel)
        ctx = RunContext(api, self.sandbox, caller, self.prompts, self.skills,
                         conversation, cancel, self.max_fn_depth, self.max_fns, self.timeout_s)  # fmt: skip
        return ctx, emit

    def _attempt(self, n: int, code: str, ctx: RunContext, emit: EventFn, attempts: list[dict],
                 command: str | None = None) -> tuple[str, dict | None, Prepared | None]:  # fmt: skip
        """One program: prepare, check, run. Returns (program, error or None, prepared)."""
        if not code.strip():
            error = {"kind": "no_code", "message": "the answer contained no Python code", "line": None}
            emit("code", {"attempt": n, "code": "", "functions": {}})
            return self._record(n, "", error, emit, attempts), error, None
        prepared = ctx.prepare(code, command)
        emit("code", {"attempt": n, "code": prepared.program, "functions": prepared.functions})
        if prepared.problems:
            p = prepared.problems[0]
            more = f" (and {len(prepared.problems) - 1} more problems)" if len(prepared.problems) > 1 else ""
            error = {"kind": "check", "message": p.message + more, "line": p.line}
        else:
            _, error = ctx.execute(prepared.program)
        return self._record(n, prepared.program, error, emit, attempts), error, prepared

    @staticmethod
    def _record(n: int, program: str, error: dict | None, emit: EventFn, attempts: list[dict]) -> str:
        attempts.append({"attempt": n, "code": program, "ok": error is None, "error": error})
        emit("attempt", {"attempt": n, "ok": error is None, "error": error})
        return program

    def _learn(self, prepared: Prepared | None) -> None:
        if prepared is None:
            return
        for name in prepared.generated:
            if name in prepared.functions and not is_stub(prepared.functions[name], name):
                self.skills.add(name, prepared.functions[name])

    def _outcome(self, status, program, attempts, error, api, said0, ctx) -> CommandOutcome:
        said = list(getattr(api, "said", [])[said0:])
        return CommandOutcome(status, program, attempts, error, said, list(ctx.caller.log))


_NOT_RUN = frozenset({"check", "no_code", "syntax", "violation"})  # refused before anything ran
REPEATED = (
    "That is the same program that just failed, and it would fail the same way. Write a different "
    "program: change what the error points at (use a position or name the error suggests, if any)."
)
REPAIR_TEMPERATURE = 0.7  # greedy decoding gave the same program again; the local model's seed is fixed


def _shape(code: str) -> str:
    """A program's structure, blind to comments and layout."""
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return " ".join(code.split())


def _status(error: dict | None) -> str:
    if error is None:
        return "succeeded"
    return "cancelled" if error["kind"] == "cancelled" else "failed"


def _with_repair(request: CompletionRequest, command: str, completion: str, error: dict, program: str,
                 moved: list[str], reset: bool) -> CompletionRequest:  # fmt: skip
    """The same conversation plus the failed answer and what went wrong."""
    where = ""
    if error.get("line"):
        where = f"\nat line {error['line']}: `{line_text(program, error['line'])}`"
    lines = [f"That program failed.\nerror ({error['kind']}): {error['message']}{where}"]
    if moved:
        lines.append("before the error: " + "; ".join(moved))
    if reset:
        lines.append("The world has been put back as it was before the command.")
    lines.append(
        f"Write the whole corrected program for the command {command!r}, every line of it, changed where the "
        "error points (a position or name the error suggests is safe to use). Reply with code only."
    )
    return with_feedback(request, completion, "\n".join(lines))
