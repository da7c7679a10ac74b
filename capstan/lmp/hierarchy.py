"""Hierarchical code generation: functions a program calls but nobody defined are written by the
fgen LMP from their call sites, recursively (depth and count limits), or taken from the skill
library. Also `FunctionGenerator`, which writes a function from a HumanEval-style spec."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from capstan.llm.base import CompletionRequest, Message
from capstan.lmp.calls import LLMCall, LLMCaller
from capstan.lmp.checks import (
    BUILTIN_NAMES,
    Problem,
    bound_names,
    defined_functions,
    generated_function_problem,
    is_literal_call,
    undefined_calls,
)
from capstan.lmp.extract import extract_code, parses
from capstan.lmp.prompt import PromptSpec, build_request, fill, load_prompt, with_feedback
from capstan.lmp.skills import SkillLibrary

TRIAL_FEEDBACK = "Called once to try it, {failure}. Fix `{name}` and write the whole function again."
Trial = Callable[[str], "str | None"]  # runs a program in the sandbox: what it raised, or None
GENERAL_API = "Use only Python builtins, the standard library and the imports already in the code."
HELPERS_ALLOWED = (
    "Keep functions short: you may call a helper function that does not exist yet, and it will be written "
    "for you from its name and how you call it."
)


# Functions small models call without importing them: imported instead of generated.
STDLIB_IMPORTS = {
    **{
        n: "itertools"
        for n in (
            "combinations",
            "permutations",
            "product",
            "accumulate",
            "groupby",
            "chain",
            "combinations_with_replacement",
            "zip_longest",
        )
    },
    **{n: "functools" for n in ("reduce", "lru_cache")},
    **{n: "collections" for n in ("Counter", "defaultdict", "deque", "OrderedDict", "namedtuple")},
    **{
        n: "math"
        for n in ("sqrt", "gcd", "floor", "ceil", "factorial", "isqrt", "comb", "perm", "hypot", "lcm")
    },
    **{n: "heapq" for n in ("heappush", "heappop", "heapify", "nlargest", "nsmallest")},
    **{n: "bisect" for n in ("bisect_left", "bisect_right", "insort")},
}


# Names a small model reads without importing them: typing's, in the annotations of helpers written
# apart from the spec's own imports, and standard-library modules used by name (`math.sqrt(x)`).
TYPING_NAMES = frozenset(
    {
        "Any",
        "Callable",
        "Dict",
        "FrozenSet",
        "Iterable",
        "Iterator",
        "List",
        "Optional",
        "Sequence",
        "Set",
        "Tuple",
        "Union",
    }
)
STDLIB_MODULES = frozenset(
    {
        "bisect",
        "collections",
        "functools",
        "hashlib",
        "heapq",
        "itertools",
        "math",
        "operator",
        "re",
        "statistics",
        "string",
    }
)


def read_imports(code: str, known: set[str]) -> dict[str, str]:
    """Imports for the typing names and standard-library modules `code` reads but never binds."""
    tree = ast.parse(code)
    bound = bound_names(tree) | BUILTIN_NAMES | set(known)
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    return {
        **{n: f"from typing import {n}" for n in sorted(read & TYPING_NAMES)},
        **{n: f"import {n}" for n in sorted(read & STDLIB_MODULES)},
    }


def stdlib_import(name: str) -> str:
    return f"from {STDLIB_IMPORTS[name]} import {name}"


def stdlib_imports(code: str, known: set[str]) -> dict[str, str]:
    """Imports for the standard-library functions `code` calls without importing them."""
    return {n: stdlib_import(n) for n in undefined_calls(code, known) if n in STDLIB_IMPORTS}


@dataclass
class Resolution:
    functions: dict[str, str] = field(default_factory=dict)  # name -> source, in definition order
    generated: list[str] = field(default_factory=list)  # names the model wrote (not from the library)
    problems: list[Problem] = field(default_factory=list)


def _context(code: str, sites: list[str], max_lines: int) -> list[str]:
    """What fgen sees of the caller: the whole calling code when short, else the call lines."""
    lines = [ln for ln in code.strip("\n").split("\n") if ln.strip()]
    return lines if len(lines) <= max_lines else sites[:6]


def literal_calls(code: str, name: str) -> list[str]:
    """The calls of `name` in `code` whose arguments are all literals: a helper can be tried on them."""
    return [ast.unparse(node) for node in ast.walk(ast.parse(code)) if is_literal_call(node, name)]


def keep_definitions(code: str) -> str:
    """Only the imports and function/class definitions of `code` (drops example usage, prints)."""
    tree = ast.parse(code)
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    parts = [
        ast.get_source_segment(code, n, padded=False) or ast.unparse(n)
        for n in tree.body
        if isinstance(n, keep)
    ]
    return "\n\n".join(p for p in parts if p).strip("\n") + "\n"


def imports_and_classes(code: str) -> dict[str, str]:
    """The top-level imports (one statement per name they bind) and classes of `code`, by name:
    what a generated function may need beside itself."""
    out: dict[str, str] = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = ast.unparse(ast.Import(names=[a]))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                bound = f"{node.module}.*" if a.name == "*" else a.asname or a.name
                out[bound] = ast.unparse(ast.ImportFrom(module=node.module, names=[a], level=0))
        elif isinstance(node, ast.ClassDef):
            out[node.name] = ast.get_source_segment(code, node, padded=False) or ast.unparse(node)
    return out


class FunctionResolver:
    def __init__(
        self,
        caller: LLMCaller,
        spec: PromptSpec,
        api_text: str,
        skills: SkillLibrary | None = None,
        max_depth: int = 3,
        max_fns: int = 8,
        trial: Trial | None = None,
        preamble: str = "",
        context_lines: int = 25,
    ):
        self.caller = caller
        self.context_lines = context_lines  # a caller this long is shown whole to fgen, else its call lines
        self.trial = trial
        self.preamble = preamble  # the caller's imports, for trial calls
        self.spec = spec
        self.api_text = api_text
        self.skills = skills
        self.max_depth = max_depth
        self.max_fns = max_fns
        # functions written in this run, by request: another candidate with the same call sites
        # (or a repair that keeps them) gets the same function without another LLM call
        self._written: dict[str, str] = {}

    def resolve(self, code: str, known: set[str]) -> Resolution:
        res = Resolution()
        queue = [
            (name, _context(code, sites, self.context_lines), literal_calls(code, name), 1)
            for name, sites in undefined_calls(code, known).items()
        ]
        while queue:
            name, sites, calls, depth = queue.pop(0)
            if name in res.functions:
                continue
            if name in STDLIB_IMPORTS:
                res.functions[name] = stdlib_import(name)
                continue
            src = self.skills.get(name) if self.skills is not None else None
            if src is None:
                src = self._generate(name, sites, calls, depth, res, known)
                if src is None:
                    continue
                res.generated.append(name)
            # what the answer needs beside the function: its imports and classes (kept first, so
            # the functions' own code comes after what it uses)
            for bound, stmt in imports_and_classes(src).items():
                res.functions.setdefault(bound, stmt)
            for fname, fsrc in defined_functions(src).items():
                res.functions.setdefault(fname, fsrc)
            res.functions[name] = defined_functions(src).get(name, src)
            known_now = known | set(res.functions) | {q[0] for q in queue}
            for sub, sub_sites in undefined_calls(src, known_now).items():
                queue.append(
                    (sub, _context(src, sub_sites, self.context_lines), literal_calls(src, sub), depth + 1)
                )
        return res

    def _generate(
        self, name: str, sites: list[str], calls: list[str], depth: int, res: Resolution, known: set[str]
    ) -> str | None:
        line = f"function {name!r} is called but not defined"
        if depth > self.max_depth:
            res.problems.append(
                Problem(
                    None,
                    f"{line}, and helper functions may nest only {self.max_depth} deep; "
                    "write it out with the functions that exist",
                )
            )
            return None
        if len(res.generated) >= self.max_fns:
            res.problems.append(
                Problem(
                    None,
                    f"{line}, and at most {self.max_fns} functions may be generated "
                    "per command; use fewer helper functions",
                )
            )
            return None
        template = self.spec.extra.get("from_calls", "# define function: {name}\n{sites}")
        query = fill(template, {"name": name, "sites": "\n".join(f"#   {s}" for s in sites)})
        request = build_request(self.spec, {"api": self.api_text, "helpers": HELPERS_ALLOWED}, query)
        key = request.key(self.spec.name)
        if key in self._written:
            return self._written[key]
        code = ""
        flaw = None
        for _ in range(2):  # a flawed answer or a failed trial call is fed back once, then it stands
            text = self.caller(self.spec.name, request).text
            code = extract_code(text)
            if not code or name not in defined_functions(code):
                res.problems.append(
                    Problem(None, f"{line}, and the function generator did not write `def {name}(...)`")
                )
                return None
            flaw = generated_function_problem(code, known)
            if flaw is not None:
                request = with_feedback(request, text, f"{flaw}.")
                continue
            failure = self._trial(keep_definitions(code), calls, known)
            if failure is None:
                break
            request = with_feedback(request, text, TRIAL_FEEDBACK.format(name=name, failure=failure))
        if flaw is not None:
            res.problems.append(
                Problem(
                    None,
                    f"{line}, and the function generator's answer for it could not be used twice: {flaw}; "
                    "write what it should do inline",
                )
            )
            return None
        self._written[key] = keep_definitions(code)
        return self._written[key]

    def _trial(self, src: str, calls: list[str], known: set[str]) -> str | None:
        """Calls the new function once on the literal arguments of a call site, when it needs no
        other function still to be written: what it raised, or None."""
        if self.trial is None or not calls:
            return None
        missing = set(undefined_calls(src, known | set(defined_functions(src)))) - set(STDLIB_IMPORTS)
        if missing:
            return None
        imports = "\n".join(stdlib_imports(src, known).values())
        error = self.trial(f"{self.preamble}\n{imports}\n\n{src}\n\n{calls[0]}\n")
        return None if error is None else f"`{calls[0]}` raised {error}"


ExampleCheck = Callable[[str], list[str]]  # a module -> what fails on the spec's examples ([] = none)

REVISE = (
    "Your `{name}` is wrong on an example from its docstring: {failure}. Find the mistake and write "
    "the whole function again, correctly, in one ```python block."
)


@dataclass
class GeneratedFunction:
    code: str  # self-contained module: the spec's imports and helpers, the function, generated helpers
    helpers: dict[str, str]  # generated helper functions in `code`, by name
    llm_calls: list[LLMCall]
    attempts: int = 1  # answers asked for: 2 when the first was rewritten, 3 when then split (hierarchical)
    written: list[str] = field(default_factory=list)  # every helper the model wrote, in any attempt
    example_failures: list[str] = field(default_factory=list)  # of `code` on the spec's examples


class FunctionGenerator:
    """Writes a function from a spec (signature + docstring, HumanEval style).

    With a `check` (the spec's own docstring examples, run in the sandbox), an answer that fails
    an example is rewritten once, told which example it fails. In hierarchical mode, when both
    answers fail, a planner then splits the function into helpers that the function generator
    writes (asked once more when its plan does every step inline, and once more, told the example,
    when the plan with its helpers fails one). Of the answers, the one failing the fewest examples
    stands (the earliest on a tie), so hierarchical mode differs from flat only by the split."""

    def __init__(
        self,
        llm,
        prompts: dict[str, PromptSpec] | None = None,
        max_depth: int = 3,
        max_fns: int = 8,
        star_names: Callable[[str], set[str]] | None = None,
        trial: Trial | None = None,
    ):
        self.llm = llm
        self.spec = (prompts or {}).get("fgen") or load_prompt("fgen")
        self.max_depth = max_depth
        self.max_fns = max_fns
        # what `from M import *` in the code binds (the sandbox knows); those are not to generate
        self.star_names = star_names or (lambda code: set())
        self.trial = trial

    @staticmethod
    def assemble(spec: str, completion: str, entry_point: str) -> str:
        """A runnable module from the spec and an answer (see `assemble`), with nothing added."""
        return assemble(spec, completion, entry_point)

    def spec_request(self, spec: str) -> CompletionRequest:
        """The first request for a spec: one plain chat message, no system text and no example, the
        same in both modes (and what the benches' `naive` baseline sends with no machinery after it)."""
        template = self.spec.extra.get("from_spec", "Complete the following Python function:\n\n{spec}")
        question = fill(template, {"spec": spec.strip("\n")})
        return CompletionRequest(
            messages=(Message("user", question),),
            max_tokens=self.spec.max_tokens,
            temperature=self.spec.temperature,
        )

    def generate(
        self,
        spec: str,
        entry_point: str,
        hierarchical: bool = True,
        api_text: str = GENERAL_API,
        on_event=None,
        check: ExampleCheck | None = None,
    ) -> GeneratedFunction:
        caller = LLMCaller(self.llm, on_event)
        request = self.spec_request(spec)
        text = caller(self.spec.name, request).text
        answers = [self._module(spec, text, entry_point, hierarchical, api_text, caller)]
        if check is None:
            return answers[0]
        answers[0].example_failures = check(answers[0].code)
        if answers[0].example_failures:  # both modes: the answer rewritten, told which example it fails
            feedback = REVISE.format(name=entry_point, failure=answers[0].example_failures[0])
            rewrite = caller(self.spec.name, with_feedback(request, text, feedback)).text
            answers.append(self._module(spec, rewrite, entry_point, hierarchical, api_text, caller))
            answers[-1].example_failures = check(answers[-1].code)
        if hierarchical and all(a.example_failures for a in answers):  # then hierarchy's own try: a split
            split = self._split_request(spec)
            plan = caller(self.spec.name, split).text
            if not self._calls_helpers(spec, plan, entry_point):  # written inline: asked once for the calls
                again = fill(self.spec.extra["split_inline"], {"name": entry_point})
                split = with_feedback(split, plan, again)  # the plan's conversation goes on from here
                plan = caller(self.spec.name, split).text
            answers.append(self._module(spec, plan, entry_point, hierarchical, api_text, caller, split=True))
            answers[-1].example_failures = check(answers[-1].code)
            if answers[-1].example_failures and self._calls_helpers(spec, plan, entry_point):
                # the plan's failing example goes back to the planner once: a step to mend or add
                failure = answers[-1].example_failures[0]
                revise = fill(self.spec.extra["split_revise"], {"name": entry_point, "failure": failure})
                plan = caller(self.spec.name, with_feedback(split, plan, revise)).text
                answers.append(
                    self._module(spec, plan, entry_point, hierarchical, api_text, caller, split=True)
                )
                answers[-1].example_failures = check(answers[-1].code)
        best = min(answers, key=lambda a: len(a.example_failures))  # the earlier answer wins a tie
        best.attempts, best.llm_calls = len(answers), caller.log
        best.written = [name for a in answers for name in a.written]
        return best

    def _split_request(self, spec: str) -> CompletionRequest:
        """A fresh request, to a planner, for the function's body as calls of helpers still to be written."""
        extra = self.spec.extra
        planner = dataclasses.replace(
            self.spec, system=extra["split_system"], examples=list(extra["split_examples"])
        )
        request = build_request(planner, {}, fill(extra["split"], {"spec": spec.strip("\n")}))
        return dataclasses.replace(
            request,
            stop=tuple(extra.get("split_stop", ())),
            max_tokens=int(extra.get("split_max_tokens", 200)),
        )

    def _calls_helpers(self, spec: str, plan: str, entry_point: str) -> bool:
        """Whether a planner's answer calls a function nobody has written yet (the spec's own, the
        standard library's and what star imports bind do not count)."""
        code = assemble(spec, plan, entry_point)
        if not parses(code):
            return True  # not a plan to re-ask for: it fails on its own
        code = _without_own_helpers(code, spec, entry_point)
        called = undefined_calls(code, self.star_names(code))
        return any(name not in STDLIB_IMPORTS for name in called)

    def _module(
        self,
        spec: str,
        text: str,
        entry_point: str,
        hierarchical: bool,
        api_text: str,
        caller: LLMCaller,
        split: bool = False,
    ) -> GeneratedFunction:
        """The answer as a runnable module, with its undefined helpers written (hierarchical) or only
        the standard-library imports it forgot (both modes). `split`: the answer was asked to leave its
        helpers to the function generator, so any it wrote itself are dropped and written from their calls."""
        code = assemble(spec, text, entry_point)
        if not parses(code):
            return GeneratedFunction(code=code, helpers={}, llm_calls=caller.log)
        if split:
            code = _with_docstring(_without_own_helpers(code, spec, entry_point), spec, entry_point)
        known = self.star_names(code)
        helpers: dict[str, str] = {}
        if hierarchical:
            resolver = FunctionResolver(
                caller,
                self.spec,
                api_text,
                None,
                self.max_depth,
                self.max_fns,
                trial=self.trial,
                preamble=_imports(code),
                context_lines=40,
            )
            res = resolver.resolve(code, known)
            helpers = {n: res.functions[n] for n in res.generated if n in res.functions}
            functions = res.functions
        else:  # the same preamble as hierarchical mode, so the only difference is the hierarchy
            functions = stdlib_imports(code, known)
        if functions:
            code = _insert_after_imports(code, "\n\n".join(functions.values()))
        imports = read_imports(code, known)  # both modes: helpers and answers alike read them
        if imports:
            code = _insert_after_imports(code, "\n".join(imports.values()))
        return GeneratedFunction(code=code, helpers=helpers, llm_calls=caller.log, written=list(helpers))


def _imports(code: str) -> str:
    tree = ast.parse(code)
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def _with_docstring(code: str, spec: str, entry_point: str) -> str:
    """`code` with the spec's docstring put back into `entry_point` when the answer left it out
    (a planner's short answer): the helpers' writer reads the caller, docstring and all."""
    try:
        spec_fn = next(
            n for n in ast.parse(spec).body if isinstance(n, ast.FunctionDef) and n.name == entry_point
        )
    except (SyntaxError, StopIteration):
        return code
    doc = ast.get_docstring(spec_fn, clean=False)
    fn = next(
        (n for n in ast.parse(code).body if isinstance(n, ast.FunctionDef) and n.name == entry_point), None
    )
    if not doc or fn is None or ast.get_docstring(fn) is not None:
        return code
    lines = code.split("\n")
    first = fn.body[0]
    indent = " " * first.col_offset
    docstring = spec_fn.body[0]  # an ast.Expr: get_docstring found it
    segment = ast.get_source_segment(spec, docstring.value) if isinstance(docstring, ast.Expr) else None
    quoted = segment or repr(doc)
    lines.insert(first.lineno - 1, indent + quoted)
    out = "\n".join(lines)
    return out if parses(out) else code


def _without_own_helpers(code: str, spec: str, entry_point: str) -> str:
    """`code` without the functions the answer wrote beside or inside `entry_point` (the spec's own
    stay): those are left to the function generator, which writes each from its calls."""
    keep = {entry_point, *defined_functions(spec)} if parses(spec) else {entry_point}
    tree = ast.parse(code)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    drop = [n for n in tree.body if isinstance(n, defs) and n.name not in keep]
    for n in tree.body:
        if isinstance(n, ast.FunctionDef) and n.name == entry_point:
            inner = [d for d in n.body if isinstance(d, defs)]
            if len(inner) < len(n.body):  # a body of only helpers would be left empty
                drop += inner
    lines = code.split("\n")
    for n in sorted(drop, key=lambda d: d.lineno, reverse=True):
        first = min([n.lineno, *(d.lineno for d in n.decorator_list)])
        del lines[first - 1 : n.end_lineno]
    out = "\n".join(lines).strip("\n") + "\n"
    return out if parses(out) else code


def assemble(spec: str, completion: str, entry_point: str) -> str:
    """A runnable module from the spec and the model's answer, which may be the whole function, the
    body only, or the function plus chatter."""
    code = extract_code(completion)
    if not code or entry_point not in defined_functions(code):
        body = completion.split("```python")[-1].split("```")[0] if "```" in completion else completion
        joined = spec.rstrip() + "\n" + body.rstrip("\n") + "\n"
        if parses(joined) and entry_point in defined_functions(joined):
            return keep_definitions(joined)
        return code if code else spec.rstrip() + "\n    raise NotImplementedError\n"
    code = keep_definitions(code)
    try:
        spec_tree = ast.parse(spec)
    except SyntaxError:
        return code
    own = set(defined_functions(code))
    head = []
    for node in spec_tree.body:
        if (
            isinstance(node, (ast.Import, ast.ImportFrom))
            or isinstance(node, ast.FunctionDef)
            and node.name not in own
        ):
            head.append(ast.get_source_segment(spec, node) or ast.unparse(node))
    return ("\n\n".join(head) + "\n\n\n" if head else "") + code


def _insert_after_imports(code: str, functions: str) -> str:
    tree = ast.parse(code)
    last = 0
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            last = node.end_lineno or last
        else:
            break
    lines = code.split("\n")
    return "\n".join(lines[:last] + ["", functions.strip("\n"), ""] + lines[last:]).strip("\n") + "\n"
