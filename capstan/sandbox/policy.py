"""Static check of a generated program before it runs (the first thing the sandbox does with it).

Parses with `ast` and refuses what has no place in policy code and is the usual way out of a
Python-level sandbox: imports outside the allowlist, any dunder name or attribute, private
(`_x`) attributes, the builtins that reach objects by string or run code (getattr, eval, ...),
attributes that reach frames, code objects or modules (gi_frame, f_back, tb_frame, ...),
`str.format` on non-literal strings or with attribute/index fields, 3-argument `type()`,
class definitions and async code. Its job is a clear error with a line number for the model;
the security boundary is the operating system's (see `isolation.py`).
"""

from __future__ import annotations

import ast
import builtins
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_CODE_CHARS = 200_000
MAX_VIOLATIONS = 20

DEFAULT_MODULES: frozenset[str] = frozenset(
    {
        "numpy",
        "numpy.linalg",
        "numpy.random",
        "numpy.fft",
        "numpy.polynomial",
        "shapely",
        "shapely.geometry",
        "shapely.affinity",
        "shapely.ops",
        "shapely.prepared",
        "shapely.validation",
        "shapely.strtree",
        "math",
        "cmath",
        "random",
        "itertools",
        "functools",
        "collections",
        "typing",
        "heapq",
        "bisect",
        "statistics",
        "copy",
        "operator",
    }
)

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "__import__",
        "breakpoint",
        "input",
        "memoryview",
        "help",
        "dir",
        "exit",
        "quit",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "copyright",
        "credits",
        "license",
        "attrgetter",
        "methodcaller",
        "object",
        "__build_class__",
        "__builtins__",
        "__loader__",
        "__spec__",
    }
)

# Attributes that reach frames, code, globals, modules or a getattr by string, on any object.
FORBIDDEN_ATTRS: frozenset[str] = frozenset(
    {
        "func_globals",
        "func_code",
        "func_closure",
        "im_func",
        "im_self",
        "im_class",
        "format_map",
        "obj",
        "mro",
        "ctypes",
        "cffi",
        "os",
        "sys",
        "subprocess",
        "builtins",
        "system",
        "popen",
        "modules",
        "load_module",
        "exec_module",
        "attrgetter",
        "methodcaller",
        "getattr",
        "setattr",
        "delattr",
        "eval",
        "exec",
        "Formatter",
        "vformat",
        "get_field",
    }
)
FORBIDDEN_ATTR_PREFIXES = ("_", "gi_", "cr_", "ag_", "f_", "tb_", "co_")

# Modules that are a door to the host by design; never accepted as `extra_modules`.
UNSAFE_MODULES: frozenset[str] = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "socket",
        "ctypes",
        "importlib",
        "builtins",
        "pickle",
        "marshal",
        "shelve",
        "shutil",
        "pathlib",
        "io",
        "inspect",
        "gc",
        "threading",
        "multiprocessing",
        "signal",
        "code",
        "codeop",
        "runpy",
        "types",
        "posix",
        "pty",
        "fcntl",
        "resource",
        "mmap",
        "tempfile",
        "glob",
        "asyncio",
        "concurrent",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "ssl",
        "select",
        "selectors",
        "sysconfig",
        "site",
        "traceback",
        "linecache",
        "tokenize",
        "dis",
        "weakref",
        "copyreg",
        "zipimport",
        "pkgutil",
        "platform",
        "webbrowser",
        "antigravity",
        "this",
    }
)

_REFUSED_NODES = {
    ast.ClassDef: "class definitions are not allowed in policy code; use functions, dicts and lists",
    ast.AsyncFunctionDef: "async functions are not allowed in policy code",
    ast.Await: "await is not allowed in policy code",
    ast.AsyncFor: "async for is not allowed in policy code",
    ast.AsyncWith: "async with is not allowed in policy code",
}
_SAFE_DUNDER_NAMES = {"__name__"}


@dataclass(frozen=True)
class Violation:
    """One reason a program may not run. `kind` is "violation" or "syntax"."""

    line: int | None
    message: str
    kind: str = "violation"

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def check(
    code: str,
    allowed_modules: Iterable[str] = DEFAULT_MODULES,
    allowed_names: Iterable[str] | None = None,
    star_names: Callable[[str], Iterable[str]] | None = None,
) -> list[Violation]:
    """Violations of the policy, empty when the program may run. A syntax error is returned
    as a single Violation with kind "syntax". When `allowed_names` is given, names that are
    neither builtins, bound by the program, nor in `allowed_names` are reported too.
    `star_names(module)` lists what `from module import *` binds; without it star imports are
    refused, since the check could not know the names the program then uses."""
    if not isinstance(code, str):
        return [Violation(None, f"program must be a str, got {type(code).__name__}", "syntax")]
    if len(code) > MAX_CODE_CHARS:
        return [Violation(None, f"program is {len(code)} characters; the limit is {MAX_CODE_CHARS}")]
    try:
        tree = ast.parse(code, filename="<policy>")
    except SyntaxError as exc:
        return [Violation(exc.lineno, f"SyntaxError: {exc.msg}", "syntax")]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [Violation(None, f"program cannot be parsed: {type(exc).__name__}: {exc}", "syntax")]
    checker = _Checker(frozenset(allowed_modules), star_names is not None)
    try:
        for node in ast.walk(tree):
            checker.visit_node(node)
    except RecursionError:
        return [Violation(None, "program is nested too deeply to check")]
    if allowed_names is not None:
        starred = (
            {n for m in star_modules(tree, checker.allowed_modules) for n in star_names(m)}
            if star_names
            else set()
        )
        checker.check_unbound(tree, set(allowed_names) | starred)
    found = sorted(set(checker.violations), key=lambda v: (v.line or 0, v.message))
    return found[:MAX_VIOLATIONS]


class _Checker:
    def __init__(self, allowed_modules: frozenset[str], star_imports: bool = False):
        self.allowed_modules = allowed_modules
        self.star_imports = star_imports
        self.violations: list[Violation] = []
        # `.format` attributes seen as the callee of a checked string literal; ast.walk visits
        # a Call before its func, so every other `.format` (stored, or on a variable) is refused
        self.checked_formats: set[int] = set()

    def refuse(self, node: ast.AST, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", None), message))

    def visit_node(self, node: ast.AST) -> None:
        for node_type, message in _REFUSED_NODES.items():
            if isinstance(node, node_type):
                self.refuse(node, message)
        if isinstance(node, ast.Name):
            self.check_name(node, node.id)
        elif isinstance(node, ast.Attribute):
            self.check_attr(node, node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.check_import(node)
        elif isinstance(node, ast.Call):
            self.check_call(node)
        for name in _bound_identifiers(node):
            self.check_name(node, name)
        if isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                self.check_attr(node, attr)
            if node.patterns:
                # positional sub-patterns read the attributes the class names in __match_args__,
                # a getattr by string for any class the program can make or find
                self.refuse(node, "positional class patterns are not allowed; use keywords: case Point(x=x)")

    def check_name(self, node: ast.AST, name: str) -> None:
        if name in _SAFE_DUNDER_NAMES:
            return
        if name.startswith("__"):
            self.refuse(
                node, f"dunder name {name!r} is not allowed in policy code (no names starting with '__')"
            )
        elif name in FORBIDDEN_NAMES:
            self.refuse(node, f"{name!r} is not available in policy code")

    def check_attr(self, node: ast.AST, attr: str) -> None:
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            # policy code has no objects of its own (no classes); an attribute store could only
            # rewrite a library class or module shared by the worker
            self.refuse(
                node, f"assigning or deleting attribute {attr!r} is not allowed in policy code; use a dict"
            )
        elif attr == "format" and id(node) not in self.checked_formats:
            self.refuse(node, "'.format' may only be called right away on a string literal; use an f-string")
        elif attr.startswith("__"):
            self.refuse(node, f"dunder attribute {attr!r} is not allowed in policy code")
        elif attr.startswith(FORBIDDEN_ATTR_PREFIXES):
            self.refuse(node, f"attribute {attr!r} is not allowed (private, frame or code attribute)")
        elif attr in FORBIDDEN_ATTRS:
            self.refuse(node, f"attribute {attr!r} is not allowed in policy code")

    def check_import(self, node: ast.Import | ast.ImportFrom) -> None:
        allowed = ", ".join(sorted(self.allowed_modules))
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in self.allowed_modules:
                    self.refuse(node, f"import of {alias.name!r} is not allowed; allowed modules: {allowed}")
            return
        if node.level or not node.module:
            self.refuse(node, "relative imports are not allowed")
            return
        if node.module not in self.allowed_modules:
            self.refuse(node, f"import from {node.module!r} is not allowed; allowed modules: {allowed}")
        for alias in node.names:
            if alias.name == "*":
                if not self.star_imports and node.module in self.allowed_modules:
                    self.refuse(
                        node, f"'from {node.module} import *' is not allowed; import the names you use"
                    )
            else:
                self.check_attr(node, alias.name)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "type" and (len(node.args) != 1 or node.keywords):
            self.refuse(node, "type() may only be called with one argument")
        if isinstance(func, ast.Attribute) and func.attr == "format":
            receiver = func.value
            if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
                self.refuse(node, ".format() is only allowed on string literals; use an f-string")
            elif not _plain_format_string(receiver.value):
                self.refuse(node, "format strings may not access attributes or items ('{0.x}', '{0[k]}')")
            self.checked_formats.add(id(func))  # judged here, once

    def check_unbound(self, tree: ast.Module, allowed: set[str]) -> None:
        bound = set(dir(builtins)) | allowed | _SAFE_DUNDER_NAMES
        for node in ast.walk(tree):
            bound.update(_bound_identifiers(node))
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                bound.add(node.id)
        reported: set[str] = set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
                continue
            if node.id not in bound and node.id not in reported:
                reported.add(node.id)
                self.refuse(
                    node, f"name {node.id!r} is not defined (not a builtin, host function or assignment)"
                )


def star_modules(tree: ast.AST, allowed_modules: Iterable[str]) -> set[str]:
    """The allowed modules the program star-imports (`from M import *`)."""
    allowed = set(allowed_modules)
    return {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module in allowed and any(a.name == "*" for a in n.names)
    }


def _bound_identifiers(node: ast.AST) -> list[str]:
    """Identifier strings a node introduces (function, argument, import alias, except name...)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword):
        return [node.arg] if node.arg else []
    if isinstance(node, ast.alias):
        return [node.asname or node.name.split(".")[0]]
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names)
    if isinstance(node, ast.ExceptHandler):
        return [node.name] if node.name else []
    if isinstance(node, (ast.MatchAs, ast.MatchStar)):
        return [node.name] if node.name else []
    if isinstance(node, ast.MatchMapping):
        return [node.rest] if node.rest else []
    return []


def _plain_format_string(text: str, depth: int = 0) -> bool:
    """True when every replacement field is positional/named without '.' or '[' access."""
    if depth > 2:
        return False
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return False
    for _literal, field, spec, _conv in fields:
        if field is None:
            continue
        if "." in field or "[" in field or field.startswith("_"):
            return False
        if spec and "{" in spec and not _plain_format_string(spec, depth + 1):
            return False
    return True
