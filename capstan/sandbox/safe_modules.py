"""What the program can reach inside the worker (layer 2): proxied modules, a restricted
builtins dict, a guarded `__import__`, a capped `print`, and the primitive error classes.

An allowed module is a door to everything it imports, so the program never gets a real module:
each allowed module is copied into a fresh module object holding only its safe public
attributes; submodules appear only if allowlisted (themselves proxied), every other module-typed
attribute is dropped, and file/pickle/ctypes entry points are left out. Built once per worker,
before any untrusted code runs.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
import warnings

import numpy as np
from shapely.coords import CoordinateSequence
from shapely.geometry.base import GeometrySequence

from capstan.sandbox import guards, inplace
from capstan.sandbox.policy import FORBIDDEN_ATTRS

# Per-module allowlists for the standard library (None = every public non-module attribute).
_STDLIB_NAMES: dict[str, frozenset[str] | None] = {
    "math": None,
    "cmath": None,
    "random": None,
    "itertools": None,
    "heapq": None,
    "bisect": None,
    "statistics": None,
    # no cmp_to_key: it runs program code inside `<`, and numpy's in-place sort of an object
    # array whose comparison rewrites that array frees objects it still holds (use after free)
    "functools": frozenset({"reduce", "partial", "lru_cache", "cache"}),
    # no ChainMap: its Python-level == looks keys up in its maps, so a defaultdict among them
    # runs program code inside a comparison (the same use after free as cmp_to_key, above)
    "collections": frozenset({"deque", "defaultdict", "Counter", "OrderedDict", "namedtuple"}),
    "operator": frozenset(
        [
            "abs",
            "add",
            "and_",
            "contains",
            "countOf",
            "eq",
            "floordiv",
            "ge",
            "gt",
            "index",
            "indexOf",
            "inv",
            "invert",
            "itemgetter",
            "le",
            "lt",
            "matmul",
            "mod",
            "mul",
            "ne",
            "neg",
            "not_",
            "or_",
            "pos",
            "pow",
            "sub",
            "truediv",
            "truth",
            "xor",
        ]
    ),
}

# Annotation names policy code may import from `typing` (inert hints, see guards.TypeHint).
_TYPING_NAMES = (
    "Any", "Callable", "Dict", "FrozenSet", "Generator", "Iterable", "Iterator", "List", "Mapping",
    "Optional", "Sequence", "Set", "Tuple", "Union",
)  # fmt: skip
# Type-hint objects that modules import for their own annotations are not their API (and
# typing's aliases forward attribute access to the shared collections.abc classes).
_HINT_MODULES = ("typing", "collections.abc", "_collections_abc")

# Left out of numpy/shapely whatever the attribute name (file I/O, pickle, raw memory, config).
_THIRD_PARTY_DENY = FORBIDDEN_ATTRS | frozenset(
    [
        "fromstring",
        "frombuffer",
        "from_dlpack",
        "get_include",
        "lookfor",
        "source",
        "who",
        "set_string_function",
        "recfromtxt",
        "recfromcsv",
        "byte_bounds",
        "deprecate",
        "add_newdoc",
        "add_docstring",
        "add_newdoc_ufunc",
        "setbufsize",
        "getbufsize",
    ]
)

_ALLOWED_SUBMODULES = {
    "numpy": ("linalg", "random", "fft", "polynomial", "emath"),
    "numpy.polynomial": ("polynomial", "chebyshev", "legendre", "hermite", "laguerre"),
    "shapely": ("geometry", "affinity", "ops", "prepared", "validation", "strtree"),
}


def build_module_proxies(extra_modules=()) -> dict[str, types.ModuleType]:
    """{dotted name: proxy} for every importable name, built from the real modules."""
    proxies: dict[str, types.ModuleType] = {}
    subs = guards.substitutes()
    for name, allowed in _STDLIB_NAMES.items():
        proxies[name] = _proxy(importlib.import_module(name), allowed, proxies, name, subs)
    proxies["copy"] = guards.copy_module()  # plain data only, never the pickle protocol
    proxies["typing"] = guards.typing_module(_TYPING_NAMES)  # hints, no doors to collections.abc
    for name in ("numpy", "shapely"):
        proxies[name] = _proxy(importlib.import_module(name), None, proxies, name, subs)
    for name in extra_modules:
        if name not in proxies:
            proxies[name] = _proxy(importlib.import_module(name), None, proxies, name, subs)
    return proxies


def _public(attr: str, allowed) -> bool:
    return not attr.startswith("_") and attr not in _THIRD_PARTY_DENY and (allowed is None or attr in allowed)


@functools.cache
def public_names(dotted: str) -> frozenset[str]:
    """The names `from <dotted> import *` binds in the worker: what its proxy keeps (read on the
    host for the static check; an upper bound, since stand-ins may drop a few by identity)."""
    if dotted == "typing":
        return frozenset(_TYPING_NAMES)
    if dotted == "copy":
        return frozenset(n for n in vars(guards.copy_module()) if not n.startswith("_"))
    module = importlib.import_module(dotted)
    allowed = _STDLIB_NAMES.get(dotted)
    submodules = _ALLOWED_SUBMODULES.get(dotted, ())
    names = set(submodules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for attr in dir(module):
            value = getattr(module, attr, None) if _public(attr, allowed) else None
            if value is None or isinstance(value, types.ModuleType):
                continue
            if allowed is None and getattr(value, "__module__", None) in _HINT_MODULES:
                continue
            names.add(attr)
    return frozenset(names)


def _proxy(module, allowed, proxies: dict, dotted: str, subs: dict[int, object]) -> types.ModuleType:
    proxy = types.ModuleType(dotted, f"Sandboxed view of {dotted}")
    submodules = _ALLOWED_SUBMODULES.get(dotted, ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for attr in dir(module):
            if not _public(attr, allowed):
                continue
            try:
                value = getattr(module, attr)
            except Exception:  # noqa: BLE001, S112 - lazy attributes that fail to load are simply absent
                continue
            if allowed is None and getattr(value, "__module__", None) in _HINT_MODULES:
                continue
            if id(value) in subs:  # replaced or left out wherever it turns up
                value = subs[id(value)]
                if value is None:
                    continue
            elif dotted == "numpy" and attr not in inplace.NO_LOOPS and inplace.is_plain_function(value):
                # numpy functions call each other's comparing loops on the caller's arrays
                # (histogram calls a.min()): each one pins the object arrays it is given
                value = inplace.pinned(value)
            if isinstance(value, types.ModuleType):
                if attr not in submodules:
                    continue
                sub = f"{dotted}.{attr}"
                value = proxies.get(sub) or _proxy(value, None, proxies, sub, subs)
                proxies[sub] = value
            setattr(proxy, attr, value)
    for attr in submodules:  # submodules not imported by the package itself
        if not hasattr(proxy, attr):
            sub = f"{dotted}.{attr}"
            proxies[sub] = _proxy(importlib.import_module(sub), None, proxies, sub, subs)
            setattr(proxy, attr, proxies[sub])
    return proxy


def make_import(proxies: dict[str, types.ModuleType]):
    """The only `__import__` the program gets: hands out proxies, refuses everything else."""

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            raise ImportError("relative imports are not allowed in policy code")
        if name not in proxies:
            if name in sys.modules and not fromlist:
                # C code (e.g. numpy's PyImport_Import) imports through the builtins of the
                # calling frame, which is the program's; it reads sys.modules itself and ignores
                # what we return, so a program asking for a loaded module only ever gets None.
                return None
            allowed = ", ".join(sorted(proxies))
            raise ImportError(f"import of {name!r} is not allowed; allowed modules: {allowed}")
        if fromlist:
            return proxies[name]
        return proxies[name.split(".")[0]]

    return guarded_import


# --------------------------------------------------------------------------- builtins

_SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct",
    "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "True", "False", "None", "NotImplemented", "Ellipsis",
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "Exception",
    "FloatingPointError", "IndexError", "KeyError", "LookupError", "MemoryError", "NameError",
    "NotImplementedError", "OverflowError", "RecursionError", "RuntimeError", "StopIteration",
    "TypeError", "ValueError", "ZeroDivisionError", "UnboundLocalError", "ImportError",
    "ModuleNotFoundError", "TimeoutError", "ExceptionGroup",
)  # fmt: skip


def _safe_type(obj, *rest):
    """type(obj) only, and never a metaclass: the 3-argument form of `type(int)` (or of numpy's
    or typing's metaclasses) would create classes whose dunder methods come from dict keys."""
    if rest:
        raise TypeError("type() may only be called with one argument in policy code")
    result = type(obj)
    if issubclass(result, type):
        raise TypeError("type() of a class is not available in policy code; compare classes directly")
    if result in _FACTORY_TYPES:
        raise TypeError(f"type() of a {result.__name__} is not available in policy code")
    if issubclass(result, np.dtype):
        # dtype classes take options numpy acts on in its C loops (StringDType's na_object is
        # compared and turned into a string whenever such a dtype is made)
        raise TypeError("type() of a numpy dtype is not available in policy code; compare dtypes with ==")
    return guards.ARRAY_CLASSES.get(result, result)


# type() of these would hand out a constructor of descriptors, functions or interpreter
# objects (a property built this way ran program code inside library comparisons)
_FACTORY_TYPES = frozenset({
    property, classmethod, staticmethod, types.FunctionType, types.MethodType, types.CodeType,
    types.GetSetDescriptorType, types.MemberDescriptorType, types.MethodDescriptorType,
    types.WrapperDescriptorType, types.ClassMethodDescriptorType, types.MethodWrapperType,
    types.BuiltinFunctionType, types.CellType, types.FrameType, types.TracebackType,
    types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType, types.ModuleType,
    types.MappingProxyType, types.SimpleNamespace,
    # shapely's sequence views take any object and call its attributes from their len/bool/
    # iter/getitem/__array__: program code inside numpy's casts (use after free)
    CoordinateSequence, GeometrySequence,
})  # fmt: skip


class OutputBuffer:
    """Collects printed text up to `limit` characters, then notes how much was dropped."""

    __slots__ = ("_dropped", "_limit", "_parts", "_size")

    def __init__(self, limit: int):
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit
        self._dropped = 0

    def write(self, text: str) -> None:
        room = self._limit - self._size
        if room > 0:
            kept = text[:room]
            self._parts.append(kept)
            self._size += len(kept)
            self._dropped += len(text) - len(kept)
        else:
            self._dropped += len(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[... output truncated: {self._dropped} more characters not shown]\n"
        return text


def make_print(buffer: OutputBuffer):
    def print(*args, sep=" ", end="\n", file=None, flush=False):
        if file is not None:
            raise TypeError("print(file=...) is not available in policy code")
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if not isinstance(sep, str) or not isinstance(end, str):
            raise TypeError("sep and end must be strings")
        # exact str methods: a str subclass must not report a length or join it does not have
        buffer.write(str.__str__(str.join(str.__str__(sep), map(str, args)) + str.__str__(end)))

    return print


def build_builtins(proxies: dict, buffer: OutputBuffer) -> dict:
    import builtins

    safe = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
    safe["type"] = _safe_type
    safe["print"] = make_print(buffer)
    safe["__import__"] = make_import(proxies)
    return safe


# --------------------------------------------------------------------------- primitive errors


def make_primitive_errors(spec: dict[str, list]) -> dict[str, type]:
    """Same-named mirror of primitives.errors (`spec`: primitives.errors.mirror_spec(), sent by the
    host), so policy code can `except UnknownObjectError:` and the host's errors re-raise as them."""
    builtins_ = {"ValueError": ValueError, "KeyError": KeyError}
    errors: dict[str, type] = {}
    for name, (parent, builtin) in spec.items():
        bases = tuple(b for b in (errors.get(parent or ""), builtins_.get(builtin or "")) if b is not None)
        body = {"__module__": "capstan.primitives.errors"}
        if builtin == "KeyError":  # KeyError would repr() the message
            body["__str__"] = lambda self: str(self.args[0]) if self.args else ""
        errors[name] = type(name, bases or (Exception,), body)
    return errors


class HostFunctionError(Exception):
    """A host function failed for a reason that is not the program's fault."""
