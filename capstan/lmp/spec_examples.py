"""The worked examples a function's docstring gives, and a program that checks an answer on them.

HumanEval-style specs show their function at work (`>>> f(2)` then `4`, or `f(2) == 4`,
`f(2) ➞ 4`). The examples are part of what the model is shown, so checking an answer on them
before it is used is fair play; a problem's hidden tests are never read here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from capstan.lmp.checks import is_literal_call
from capstan.lmp.executor import PolicyExecutor


@dataclass(frozen=True)
class SpecExample:
    call: str  # source of the call, e.g. "f([1, 2], 3)"
    expected: str  # source of the expected value, a Python literal


# `f(x) == y`, `f(x) ==> y`, `f(x) => y`, `f(x) -> y`, `f(x) ➞ y`, `f(x) returns y`, `f(x) should return y`
_ARROW = re.compile(r"\s*(?:==>|=>|->|➞|==|\bshould return\b|\breturns?\b)\s*")


def spec_examples(spec: str, entry_point: str) -> list[SpecExample]:
    """The examples in the docstring of `entry_point` in `spec` whose expected value is a literal."""
    try:
        tree = ast.parse(spec)
    except SyntaxError:
        return []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point), None)
    doc = ast.get_docstring(fn, clean=True) if fn is not None else None
    if not doc:
        return []
    found: list[SpecExample] = []
    lines = doc.split("\n")
    for i, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith(">>>"):
            call = line[3:].strip()
            answer = lines[i + 1].strip() if i + 1 < len(lines) else ""
            _add(found, call, answer, entry_point)
        elif line.startswith(entry_point + "("):
            call, sep, answer = _split_call(line)
            if sep:
                _add(found, call, answer, entry_point)
    return found


def _split_call(line: str) -> tuple[str, str, str]:
    """`f(a, (b)) ==> y` as ("f(a, (b))", "==>", "y"), splitting after the balanced call."""
    depth = 0
    for i, ch in enumerate(line):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch == ")":
            m = _ARROW.match(line, i + 1)
            return (line[: i + 1], m.group(0), line[m.end() :]) if m else (line, "", "")
    return line, "", ""


def _add(found: list[SpecExample], call: str, answer: str, entry_point: str) -> None:
    answer = answer.rstrip(".,;").strip()
    try:
        node = ast.parse(call, mode="eval").body
        answer = ast.unparse(ast.parse(answer, mode="eval").body)  # drops a trailing comment
        ast.literal_eval(answer)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return
    if is_literal_call(node, entry_point):
        example = SpecExample(call, answer)
        if example not in found:
            found.append(example)


_SAME = """
def _same(got, want):
    if isinstance(want, float) or isinstance(got, float):
        try:
            return abs(got - want) <= 1e-6 * max(1.0, abs(want))
        except TypeError:
            return False
    if isinstance(want, (list, tuple)) and type(got) is type(want):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    return got == want
"""


RESULT_NAME = "examples_failed"


def examples_program(code: str, examples: list[SpecExample]) -> str:
    """`code` followed by a check of each example. The program's `examples_failed` lists what failed:
    the call, and what it raised or returned instead of the expected value."""
    checks = [f"{RESULT_NAME} = []"]
    for ex in examples:
        shown = repr(ex.call)
        checks.append(
            f"try:\n    _got = {ex.call}\nexcept Exception as _e:\n"
            f"    {RESULT_NAME}.append({shown} + ' raised ' + repr(_e))\n"
            f"else:\n    if not _same(_got, {ex.expected}):\n"
            f"        {RESULT_NAME}.append({shown} + ' returned ' + repr(_got) + ', not ' + "
            f"{ex.expected!r})\n"
        )
    return code.rstrip() + "\n\n" + _SAME + "\n" + "\n".join(checks)


def example_check(
    sandbox: PolicyExecutor, spec: str, entry_point: str, timeout_s: float = 10.0
) -> Callable[[str], list[str]] | None:
    """A check of a module on the examples in the spec's docstring, run in `sandbox` (a
    `capstan.sandbox.Sandbox`): what failed, [] when all pass. None when the spec gives no example."""
    examples = spec_examples(spec, entry_point)
    if not examples:
        return None

    def check(code: str) -> list[str]:
        res = sandbox.run(
            examples_program(code, examples),
            host_functions={},
            timeout_s=timeout_s,
            return_names=(RESULT_NAME,),
        )
        if not res.ok:
            return [f"running it failed with {res.error}"] * len(examples)
        return [str(f) for f in res.values.get(RESULT_NAME) or ()]

    return check
