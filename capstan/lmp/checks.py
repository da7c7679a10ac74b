"""Static checks on generated code, beyond the sandbox's own: names nobody defines, and object
names that are not in the scene. Each problem is a `Problem(line, message)` that goes back to the
model as feedback."""

from __future__ import annotations

import ast
import builtins
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from capstan.primitives.geometry import POSITION_NAMES
from capstan.primitives.place_names import is_place_noun, position_name

BUILTIN_NAMES = frozenset(dir(builtins))
COLORS = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "cyan",
    "brown",
    "gray",
    "grey",
    "white",
    "black",
    "magenta",
    "violet",
    "gold",
    "silver",
    "teal",
    "navy",
    "lime",
    "beige",
    "maroon",
    "indigo",
)
KINDS = ("block", "bowl", "cube", "ball", "plate", "cup", "box")
_OBJECT_LITERAL = re.compile(rf"^(?:{'|'.join(COLORS)}) (?:{'|'.join(KINDS)})s?$", re.IGNORECASE)
_MENTION = re.compile(rf"\b({'|'.join(COLORS)}) ({'|'.join(KINDS)})s?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def as_error(self, kind: str = "check") -> dict:
        return {"kind": kind, "message": self.message, "line": self.line}


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere (scope-insensitive on purpose: no false alarms)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            out.update(node.names)
        elif isinstance(node, ast.MatchAs) and node.name:
            out.add(node.name)
    return out


def _inert(stmt: ast.stmt) -> bool:
    """A statement that does nothing: pass, a bare literal (docstring, `...`), `return None`,
    `raise NotImplementedError`, or a branch or loop made only of such statements."""
    if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
        return True
    if isinstance(stmt, ast.Return):
        return stmt.value is None or (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
    if isinstance(stmt, ast.Raise):
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    if isinstance(stmt, (ast.If, ast.For, ast.While)):
        return all(_inert(s) for s in (*stmt.body, *stmt.orelse))
    return False


def is_literal(node: ast.AST) -> bool:
    """True when `node` is a Python literal (what ast.literal_eval accepts)."""
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def is_literal_call(node: ast.AST, name: str) -> bool:
    """True when `node` calls the function `name` with literal arguments only (no `*`/`**`)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name):
        return False
    if any(k.arg is None for k in node.keywords):
        return False
    return all(is_literal(a) for a in (*node.args, *(k.value for k in node.keywords)))


def is_stub(code: str, name: str) -> bool:
    """True when function `name` in `code` does nothing (its body is only inert statements, see
    `_inert`; an `except: pass` inside real code is real code). Small models write such stubs
    ("# logic to place the block here"); a program calling one runs and does nothing."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return True
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    return fn is not None and _does_nothing(fn)


def _does_nothing(fn: ast.FunctionDef) -> bool:
    return all(_inert(s) for s in fn.body)


def definition_problems(code: str, provided: set[str] | frozenset[str]) -> list[Problem]:
    """Functions the program defines that it must not: one the robot already provides (an answer
    that copies the API listing), or one that does nothing."""
    out = []
    for node in ast.parse(code).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if node.name in provided:
            out.append(
                Problem(
                    node.lineno,
                    f"`{node.name}` is provided already: call it, do not define it "
                    "(the API listing describes the functions; it is not code to copy)",
                )
            )
        elif _does_nothing(node):
            out.append(
                Problem(
                    node.lineno,
                    f"function `{node.name}` does nothing (its body is only pass, `...`, "
                    "a docstring or raise NotImplementedError); write what it should do",
                )
            )
    return out


def generated_function_problem(code: str, provided: set[str] | frozenset[str]) -> str | None:
    """What makes generated functions (an fgen answer, a skill) unusable, or None: a function defined
    twice (Python keeps the last, so a stub after a real one would slip past a look at the first),
    one named like something programs already have (a primitive, a nested LMP, a builtin: it would
    quietly replace it), or one that does nothing."""
    defs = [n for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    names = [n.name for n in defs]
    for node in defs:
        if names.count(node.name) > 1:
            return f"`{node.name}` is defined more than once; define it once"
        if node.name in provided or node.name in BUILTIN_NAMES:
            return f"`{node.name}` is provided already: call it, do not define it"
        if isinstance(node, ast.FunctionDef) and _does_nothing(node):
            return (
                f"`{node.name}` does nothing: its body is only pass, `...`, a docstring or "
                "`raise NotImplementedError`. Write the whole function, with the code that does what "
                "its name and call sites say"
            )
    return None


def defined_functions(code: str) -> dict[str, str]:
    """Top-level functions defined in `code`: {name: source}."""
    tree = ast.parse(code)
    return {
        n.name: ast.get_source_segment(code, n, padded=False) or ""
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def undefined_calls(code: str, known: set[str] | frozenset[str]) -> dict[str, list[str]]:
    """Functions called by name that nobody defines: {name: [call-site source lines]}."""
    tree = ast.parse(code)
    bound = bound_names(tree) | BUILTIN_NAMES | set(known)
    lines = code.split("\n")
    out: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in bound:
            site = lines[node.lineno - 1].strip()
            sites = out.setdefault(node.func.id, [])
            if site not in sites:
                sites.append(site)
    return out


def undefined_names(code: str, known: set[str] | frozenset[str]) -> list[Problem]:
    """Names read (not called) that nobody defines, e.g. `for b in block_names:` with no such list."""
    tree = ast.parse(code)
    bound = bound_names(tree) | BUILTIN_NAMES | set(known)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    seen: set[str] = set()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in bound or node.id in called or node.id in seen:
                continue
            seen.add(node.id)
            out.append(Problem(node.lineno, f"name {node.id!r} is used but never defined"))
    return sorted(out, key=lambda p: p.line or 0)


def unknown_object_literals(code: str, scene_names: list[str]) -> list[Problem]:
    """String literals that look like an object name ("purple block") but are not in the scene.
    Literals inside comparisons (`if 'blue bowl' in bowls:`) are tests, not uses, and pass."""
    known = {n.lower() for n in scene_names}
    tree = ast.parse(code)
    tested = {id(c) for node in ast.walk(tree) if isinstance(node, ast.Compare) for c in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in tested:
            continue
        text = node.value.strip().lower()
        if not _OBJECT_LITERAL.match(text) or text in known or text.rstrip("s") in known:
            continue
        close = difflib.get_close_matches(text, sorted(known), n=3, cutoff=0.5)
        hint = f" (closest: {', '.join(map(repr, close))})" if close else ""
        out.append(
            Problem(
                node.lineno,
                f"there is no {text!r} in the scene{hint}; use only objects that exist, and if the "
                f"command is about a missing object, say so with say() instead of acting",
            )
        )
    return out


def absent_mentions(text: str, scene_names: Iterable[str]) -> list[str]:
    """Object names the command mentions ("the purple block") that the scene does not have."""
    known = {n.lower() for n in scene_names}
    out = []
    for m in _MENTION.finditer(text):
        name = f"{m.group(1).lower()} {m.group(2).lower()}"
        if name not in known and name not in out:
            out.append(name)
    return out


def named_position_targets(code: str) -> list[Problem]:
    """`get_named_position('by the bowl')`: words that name none of the nine named positions (the
    primitive reads 'the far left corner' or 'the right edge' the way a person means them)."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        arg = node.args[0]
        if not (node.func.id == "get_named_position" and isinstance(arg, ast.Constant)):
            continue
        if position_name(str(arg.value)) is None:
            close = difflib.get_close_matches(str(arg.value).lower(), POSITION_NAMES, n=3, cutoff=0.3)
            known = ", ".join(map(repr, close or POSITION_NAMES))
            out.append(Problem(node.lineno, f"{arg.value!r} is not a named position; use one of {known}"))
    return out


_SUPERLATIVE = re.compile(
    r"\b(left|right|top|bottom|upper|lower)[- ]?most\b"
    r"|\b(closest|nearest|farthest|furthest|highest|lowest)\b",
    re.IGNORECASE,
)
_COMPUTES = re.compile(r"\b(min|max|sorted|argmin|argmax|argsort|sort)\(|\.sort\(")


def _picks_a_place(command: str, m: re.Match) -> bool:
    """The superlative picks a part of the table by where the robot is, which the place reader
    resolves: 'the corner nearest the robot', 'the edge closest to the robot' (but not 'the corner
    closest to the bowl', nor 'the block nearest the corner')."""
    before = re.findall(r"[a-z]+", command[: m.start()].lower())[-1:]
    to_robot = re.match(r"\s+(?:to\s+)?(?:the\s+)?robot\b", command[m.end() :].lower())
    return bool(before) and is_place_noun(before[0]) and to_robot is not None


def unchecked_superlative(command: str, code: str) -> list[Problem]:
    """ "the top-most block" needs a min()/max() over positions; small models like to guess a name.
    A superlative that picks a part of the table ("the corner nearest the robot") is a place the
    primitives read, not an object to compute."""
    m = next((m for m in _SUPERLATIVE.finditer(command) if not _picks_a_place(command, m)), None)
    if m is None or _COMPUTES.search(code) or "parse_obj_name" in code or "undo(" in code:
        return []
    return [
        Problem(
            None,
            f"the command asks for the {m.group(0)} one, but the program never computes it: pick it with "
            "min() or max() over get_obj_pos(name) instead of guessing a name",
        )
    ]
