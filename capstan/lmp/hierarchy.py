"""Hierarchical code generation: functions a program calls but nobody defined are written by the
fgen LMP from their call sites, recursively (depth and count limits), or taken from the skill
library. Also `FunctionGenerator`, which writes a function from a HumanEval-style spec."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from capstan.lmp.calls import LLMCaller
from capstan.lmp.checks import Problem, defined_functions, is_stub, undefined_calls
from capstan.lmp.extract import extract_code, parses
from capstan.lmp.prompt import PromptSpec, build_request, fill, load_prompt, with_feedback
from capstan.lmp.skills import SkillLibrary

STUB_FEEDBACK = (
    "`{name}` does nothing: its body is only pass, `...`, a docstring or `raise NotImplementedError`. "
    "Write the whole function, with the code that does what its name and call sites say."
)
GENERAL_API = "Use only Python builtins, the standard library and the imports already in the code."
HELPERS = {
    True: "Keep functions short: you may call a helper function that does not exist yet, and it will be written "
    "for you from its name and how you call it.",
    False: "Write everything the function needs yourself: every function you call must exist already.",
}


# Functions small models call without importing them: imported instead of generated.
STDLIB_IMPORTS = {
    **{n: "itertools" for n in ("combinations", "permutations", "product", "accumulate", "groupby", "chain",
                                "combinations_with_replacement", "zip_longest")},
    **{n: "functools" for n in ("reduce", "lru_cache")},
    **{n: "collections" for n in ("Counter", "defaultdict", "deque", "OrderedDict", "namedtuple")},
    **{n: "math" for n in ("sqrt", "gcd", "floor", "ceil", "factorial", "isqrt", "comb", "perm", "hypot", "lcm")},
    **{n: "heapq" for n in ("heappush", "heappop", "heapify", "nlargest", "nsmallest")},
    **{n: "bisect" for n in ("bisect_left", "bisect_right", "insort")},
}  # fmt: skip


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


def _context(code: str, sites: list[str], max_lines: int = 25) -> list[str]:
    """What fgen sees of the caller: the whole calling code when short, else the call lines."""
    lines = [ln for ln in code.strip("\n").split("\n") if ln.strip()]
    return lines if len(lines) <= max_lines else sites[:6]


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


class FunctionResolver:
    def __init__(
        self,
        caller: LLMCaller,
        spec: PromptSpec,
        api_text: str,
        skills: SkillLibrary | None = None,
        max_depth: int = 3,
        max_fns: int = 8,
    ):
        self.caller = caller
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
        queue = [(name, _context(code, sites), 1) for name, sites in undefined_calls(code, known).items()]
        while queue:
            name, sites, depth = queue.pop(0)
            if name in res.functions:
                continue
            if name in STDLIB_IMPORTS:
                res.functions[name] = stdlib_import(name)
                continue
            src = self.skills.get(name) if self.skills is not None else None
            if src is None:
                src = self._generate(name, sites, depth, res)
                if src is None:
                    continue
                res.generated.append(name)
            for fname, fsrc in defined_functions(src).items():
                res.functions.setdefault(fname, fsrc)
            res.functions[name] = defined_functions(src).get(name, src)
            known_now = known | set(res.functions) | {q[0] for q in queue}
            for sub, sub_sites in undefined_calls(src, known_now).items():
                queue.append((sub, _context(src, sub_sites), depth + 1))
        return res

    def _generate(self, name: str, sites: list[str], depth: int, res: Resolution) -> str | None:
        line = f"function {name!r} is called but not defined"
        if depth > self.max_depth:
            res.problems.append(Problem(None, f"{line}, and helper functions may nest only {self.max_depth} deep; "
                                              "write it out with the functions that exist"))  # fmt: skip
            return None
        if len(res.generated) >= self.max_fns:
            res.problems.append(Problem(None, f"{line}, and at most {self.max_fns} functions may be generated "
                                              "per command; use fewer helper functions"))  # fmt: skip
            return None
        template = self.spec.extra.get("from_calls", "# define function: {name}\n{sites}")
        query = fill(template, {"name": name, "sites": "\n".join(f"#   {s}" for s in sites)})
        request = build_request(self.spec, {"api": self.api_text, "helpers": HELPERS[True]}, query)
        key = request.key(self.spec.name)
        if key in self._written:
            return self._written[key]
        for _ in range(2):  # a stub is refused once, with the reason, then the answer stands
            text = self.caller(self.spec.name, request).text
            code = extract_code(text)
            if not code or name not in defined_functions(code):
                res.problems.append(
                    Problem(None, f"{line}, and the function generator did not write `def {name}(...)`")
                )
                return None
            if not is_stub(code, name):
                self._written[key] = keep_definitions(code)
                return self._written[key]
            request = with_feedback(request, text, STUB_FEEDBACK.format(name=name))
        res.problems.append(Problem(None, f"{line}, and the function generator wrote `{name}` twice as a stub "
                                          "that does nothing; write what it should do inline"))  # fmt: skip
        return None


@dataclass
class GeneratedFunction:
    code: str  # self-contained module: the spec's imports and helpers, the function, generated helpers
    helpers: dict[str, str]  # generated helper functions by name
    llm_calls: list[dict]


class FunctionGenerator:
    """Writes a function from a spec (signature + docstring, HumanEval style)."""

    def __init__(
        self,
        llm,
        prompts: dict[str, PromptSpec] | None = None,
        max_depth: int = 3,
        max_fns: int = 8,
        star_names: Callable[[str], set[str]] | None = None,
    ):
        self.llm = llm
        self.spec = (prompts or {}).get("fgen") or load_prompt("fgen")
        self.max_depth = max_depth
        self.max_fns = max_fns
        # what `from M import *` in the code binds (the sandbox knows); those are not to generate
        self.star_names = star_names or (lambda code: set())

    def generate(self, spec: str, entry_point: str, hierarchical: bool = True, api_text: str = GENERAL_API,
                 on_event=None) -> GeneratedFunction:  # fmt: skip
        caller = LLMCaller(self.llm, on_event)
        template = self.spec.extra.get("from_spec", "Complete this function:\n```python\n{spec}\n```")
        values = {"api": api_text, "helpers": HELPERS[hierarchical]}
        prompt = self.spec
        if hierarchical:  # the one difference of the modes' prompts: decomposition is shown, and allowed
            prompt = dataclasses.replace(prompt, examples=[*prompt.examples, *prompt.extra.get("decompose_examples", ())])
        request = build_request(prompt, values, fill(template, {"spec": spec.strip("\n")}))
        request = dataclasses.replace(
            request, stop=tuple(self.spec.extra.get("from_spec_stop", request.stop))
        )
        text = caller(self.spec.name, request).text
        code = assemble(spec, text, entry_point)
        helpers: dict[str, str] = {}
        if not parses(code):
            return GeneratedFunction(code=code, helpers=helpers, llm_calls=caller.log)
        known = self.star_names(code)
        if hierarchical:
            resolver = FunctionResolver(caller, self.spec, api_text, None, self.max_depth, self.max_fns)
            res = resolver.resolve(code, known)
            helpers = {n: res.functions[n] for n in res.generated if n in res.functions}
            functions = res.functions
        else:  # the same preamble as hierarchical mode, so the only difference is the hierarchy
            functions = stdlib_imports(code, known)
        if functions:
            code = _insert_after_imports(code, "\n\n".join(functions.values()))
        return GeneratedFunction(code=code, helpers=helpers, llm_calls=caller.log)


def assemble(spec: str, completion: str, entry_point: str) -> str:
    """A runnable module from the spec and the model's answer, which may be the whole function, the
    body only, or the function plus chatter."""
    code = extract_code(completion)
    if not code or entry_point not in defined_functions(code):
        body = completion.split("```python")[-1].split("```")[0] if "```" in completion else completion
        joined = spec.rstrip() + "\n" + body.rstrip("\n") + "\n"
        if parses(joined) and entry_point in defined_functions(joined):
            return keep_definitions(joined)
        return spec.rstrip() + "\n    raise NotImplementedError\n" if not code else code
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
