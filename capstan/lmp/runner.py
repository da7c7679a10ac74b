"""Turning a generated program into something the sandbox runs, for one run of the engine:
host functions (policy API + nested LMPs + undo), the scene prelude, hierarchical function
generation, the static checks, and execution with errors mapped back to program lines."""

from __future__ import annotations

import ast
import difflib
import threading
from dataclasses import dataclass, field

from capstan.lmp.calls import LLMCaller
from capstan.lmp.checks import (
    Problem,
    definition_problems,
    generated_function_problem,
    named_position_targets,
    unchecked_superlative,
    undefined_names,
    unknown_object_literals,
)
from capstan.lmp.conversation import Conversation
from capstan.lmp.executor import PolicyExecutor
from capstan.lmp.hierarchy import FunctionResolver
from capstan.lmp.nested import NestedLMPs, policy_api_text
from capstan.lmp.prompt import PromptSpec, describe_api
from capstan.lmp.scene import pure_reads, restore, scene_objects
from capstan.lmp.skills import SkillLibrary
from capstan.primitives.api import PolicyAPI
from capstan.primitives.errors import ERROR_TYPES, PrimitiveError, suggested_point
from capstan.primitives.outcome import ErrorKind, RunError

PRELUDE_NAMES = ("objects", "blocks", "bowls")


@dataclass
class Prepared:
    program: str  # generated functions + the model's code: what the trace shows
    functions: dict[str, str] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def prelude_for(objects: list[str]) -> str:
    """The scene lists the prompt showed, predefined for the program (kept out of its line numbers)."""
    blocks = [o for o in objects if o.endswith("block")]
    bowls = [o for o in objects if o.endswith("bowl")]
    return f"import numpy as np\nobjects = {objects!r}\nblocks = {blocks!r}\nbowls = {bowls!r}\n"


class RunContext:
    def __init__(
        self,
        api: PolicyAPI,
        sandbox: PolicyExecutor,
        caller: LLMCaller,
        prompts: dict[str, PromptSpec],
        skills: SkillLibrary | None,
        conversation: Conversation | None,
        cancel: threading.Event | None,
        max_fn_depth: int,
        max_fns: int,
        timeout_s: float,
    ):
        self.api, self.sandbox, self.caller, self.cancel = api, sandbox, caller, cancel
        self.conversation = conversation
        self.timeout_s = timeout_s
        self.used_undo = False
        self.rehearsing = False  # inside a dry run: the world is put back after, the conversation is not
        # nested LMPs see the primitives only; fgen's helpers may call the nested LMPs too
        self.nested = NestedLMPs(
            caller, sandbox, prompts, api, describe_api(api.describe()), self.prelude, cancel, timeout_s
        )
        self.hosts = {**api.functions(), **self.nested.functions(), "undo": self.undo}
        self.pure = pure_reads(api)
        self.resolver = FunctionResolver(
            caller, prompts["fgen"], policy_api_text(api), skills, max_fn_depth, max_fns
        )
        self.modules = set(prompts["tabletop_ui"].modules) | {"np"}

    def prelude(self) -> str:
        return prelude_for(scene_objects(self.api)[0])

    def known_names(self) -> set[str]:
        return set(self.hosts) | set(PRELUDE_NAMES) | self.modules | set(ERROR_TYPES)

    def undo(self) -> str:
        """Put the world back as it was before the previous command."""
        if self.conversation is None:
            raise PrimitiveError("undo needs a conversation: there is no earlier command in this run")
        target = self.conversation.undo_target()
        if target is None:
            raise PrimitiveError("nothing to undo: no earlier command in this session changed the world")
        restore(self.api, target.snapshot)
        if not self.rehearsing:
            target.undone = True
            self.used_undo = True
        return f"undid: {target.command}"

    def prepare(self, code: str, command: str | None = None) -> Prepared:
        """Resolve undefined functions and run every static check. With `command`, also the advisory
        check that a superlative in it ("the top-most block") is computed, not guessed."""
        try:
            ast.parse(code)
        except SyntaxError as exc:
            return Prepared(code, problems=[Problem(exc.lineno, f"syntax error: {exc.msg}")])
        except (RecursionError, MemoryError):  # 20,000 terms in one expression, say
            return Prepared(
                code, problems=[Problem(None, "syntax error: the program is nested too deep to read")]
            )
        known = self.known_names() | self.sandbox.star_names(code)
        res = self.resolver.resolve(code, known)
        head = "\n\n".join(res.functions.values())
        program = (head.rstrip("\n") + "\n\n" if head else "") + code
        out = Prepared(program, dict(res.functions), list(res.generated), list(res.problems))
        offset = len(program.split("\n")) - len(code.split("\n"))
        out.problems += [
            Problem(p.line + offset if p.line else None, p.message)
            for p in undefined_names(code, known | set(res.functions))
        ]
        out.problems += [
            Problem(p.line + offset if p.line else None, p.message)
            for p in definition_problems(code, frozenset(self.hosts))
        ]
        flaw = generated_function_problem(head, known) if head else None
        if flaw is not None:  # helpers from skills, or ones an answer wrote beside the one asked for
            out.problems.append(Problem(None, f"a helper function: {flaw}"))
        out.problems += unknown_object_literals(program, scene_objects(self.api)[0])
        out.problems += named_position_targets(program)
        if command:
            out.problems += unchecked_superlative(command, program)
        prelude = self.prelude()
        for v in self.sandbox.check(prelude + program, sorted(known | set(res.functions))):
            line = v.line - prelude.count("\n") if v.line else None
            out.problems.append(Problem(line if line and line > 0 else None, v.message))
        return out

    def execute(self, program: str, dry: bool = False) -> tuple[bool, RunError | None]:
        """Run the program; `dry` when a rehearsal puts the world back afterwards."""
        prelude = self.prelude()
        self.rehearsing = dry
        self.nested.begin(self.timeout_s)
        try:
            res = self.sandbox.run(
                prelude + program,
                host_functions=self.hosts,
                timeout_s=self.timeout_s,
                cancel=self.cancel,
                pure=self.pure,
            )
        finally:
            self.rehearsing = False
        if self.nested.llm_failure is not None:  # the model is down: the run fails as such, no repair
            raise self.nested.llm_failure
        if res.error is None:
            return True, None
        return False, res.error.shifted(prelude.count("\n"))


def line_text(program: str, line: int | None) -> str:
    lines = program.split("\n")
    return lines[line - 1].strip() if line and 0 < line <= len(lines) else ""


def splice_fix(program: str, fix: str, error: RunError | None) -> str:
    """Small models often answer a repair request with only the corrected line. When the fix is one
    line resembling the failed line of a longer program, put it in that line's place."""
    line = error.line if error is not None else None
    fix_lines = [ln for ln in fix.strip("\n").split("\n") if ln.strip()]
    old = program.rstrip("\n").split("\n")
    if len(fix_lines) != 1 or len(old) < 2 or not line or not 0 < line <= len(old):
        return fix
    target = old[line - 1]
    if difflib.SequenceMatcher(None, target.strip(), fix_lines[0].strip()).ratio() < 0.6:
        return fix
    indent = target[: len(target) - len(target.lstrip())]
    candidate = "\n".join(old[: line - 1] + [indent + fix_lines[0].strip()] + old[line:]) + "\n"
    try:
        ast.parse(candidate)
    except SyntaxError:
        return fix
    return candidate


# primitives whose place target an error's suggested point can stand in for: name -> argument index
_TARGET_ARGUMENT = {"put_first_on_second": 1, "place": 0}


def line_with_suggested_point(program: str, error: RunError) -> str | None:
    """The failed line with the point its error names (the nearest point inside the table, the
    nearest free spot) as the place target, when that line is a top-level call of a placing primitive;
    else None. A call inside a loop or a function is left alone: one point would not serve every pass."""
    point = suggested_point(error.message) if error.kind == ErrorKind.PRIMITIVE and error.line else None
    if point is None or len(point) != 2:
        return None
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return None
    stmt = next((s for s in tree.body if s.lineno == error.line == s.end_lineno), None)
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    index = _TARGET_ARGUMENT.get(call.func.id) if isinstance(call.func, ast.Name) else None
    if index is None:
        return None
    literal = ast.List([ast.Constant(round(v, 3)) for v in point], ast.Load())
    if len(call.args) > index:
        call.args[index] = literal
    else:
        keyword = next((k for k in call.keywords if k.arg == "target"), None)
        if keyword is None:
            return None
        keyword.value = literal
    return ast.unparse(call)
