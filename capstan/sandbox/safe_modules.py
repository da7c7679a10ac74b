"""What the program can reach inside the worker: proxied modules, a restricted builtins dict, a
guarded `__import__`, a capped `print`, and the primitive error classes.

This Python layer is not the security boundary; the operating system is (bubblewrap or
Landlock, seccomp and rlimits: see `isolation.py`). As with HumanEval's execution harness, a
program that gets past this layer finds a process with no network, no writes, no exec, a
read-only view of Python's own files and one channel to a host that checks every message.
The layer's job is to keep policy code to its API and to give the model clear errors: an
allowed module is copied into a fresh module object holding only its public attributes
(submodules only if allowlisted, no other module-typed attribute, no file I/O or pickle entry
points), so `import os` fails with the list of modules that are allowed. Built once per worker,
before any untrusted code runs.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
import warnings

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
    "functools": frozenset({"reduce", "partial", "lru_cache", "cache", "cmp_to_key"}),
    "collections": frozenset({"deque", "defaultdict", "Counter", "OrderedDict", "namedtuple", "ChainMap"}),
    "copy": frozenset({"copy", "deepcopy", "Error"}),
    "typing": frozenset(
        {
            "Any",
            "Callable",
            "Dict",
            "FrozenSet",
            "Generator",
            "Iterable",
            "Iterator",
            "List",
            "Mapping",
            "Optional",
            "Sequence",
            "Set",
            "Tuple",
            "Union",
        }
    ),
    "operator": frozenset(
        {
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
        }
    ),
}
# Type-hint objects that modules import for their own annotations are not their API.
_HINT_MODULES = ("typing", "collections.abc", "_collections_abc")
# Left out of numpy/shapely: file I/O, pickle, raw memory, build and test machinery, and what reads
# its caller's frame (np.bmat looks names up in the calling frame's globals and locals).
_THIRD_PARTY_DENY = FORBIDDEN_ATTRS | frozenset(
    {
        "fromstring",
        "frombuffer",
        "from_dlpack",
        "fromfile",
        "fromregex",
        "tofile",
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "memmap",
        "DataSource",
        "open_memmap",
        "ctypeslib",
        "f2py",
        "testing",
        "distutils",
        "lib",
        "npyio",
        "get_include",
        "lookfor",
        "source",
        "who",
        "show_config",
        "show_runtime",
        "test",
        "info",
        "recfromtxt",
        "recfromcsv",
        "bmat",
    }
)
_ALLOWED_SUBMODULES = {
    "numpy": ("linalg", "random", "fft", "polynomial", "emath"),
    "numpy.polynomial": ("polynomial", "chebyshev", "legendre", "hermite", "laguerre"),
    "shapely": ("geometry", "affinity", "ops", "prepared", "validation", "strtree"),
}


def build_module_proxies(extra_modules=()) -> dict[str, types.ModuleType]:
    """{dotted name: proxy} for every importable name, built from the real modules."""
    proxies: dict[str, types.ModuleType] = {}
    for name in (*_STDLIB_NAMES, "numpy", "shapely", *extra_modules):
        if name not in proxies:
            proxies[name] = _proxy(importlib.import_module(name), _STDLIB_NAMES.get(name), proxies, name)
    return proxies


def _public(attr: str, allowed) -> bool:
    return not attr.startswith("_") and attr not in _THIRD_PARTY_DENY and (allowed is None or attr in allowed)


def _exported(module, attr: str, allowed):
    """The attribute `attr` of `module` as a proxy holds it, or None when left out."""
    if not _public(attr, allowed):
        return None
    try:
        value = getattr(module, attr)
    except Exception:  # noqa: BLE001 - lazy attributes that fail to load are simply absent
        return None
    if allowed is None and getattr(value, "__module__", None) in _HINT_MODULES:
        return None
    return value


@functools.cache
def public_names(dotted: str) -> frozenset[str]:
    """The names `from <dotted> import *` binds in the worker: what its proxy keeps (read on the
    host for the static check)."""
    module = importlib.import_module(dotted)
    allowed = _STDLIB_NAMES.get(dotted)
    names = set(_ALLOWED_SUBMODULES.get(dotted, ()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for attr in dir(module):
            value = _exported(module, attr, allowed)
            if value is not None and not isinstance(value, types.ModuleType):
                names.add(attr)
    return frozenset(names)


def _proxy(module, allowed, proxies: dict, dotted: str) -> types.ModuleType:
    proxy = types.ModuleType(dotted, f"Sandboxed view of {dotted}")
    submodules = _ALLOWED_SUBMODULES.get(dotted, ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for attr in dir(module):
            value = _exported(module, attr, allowed)
            if value is None:
                continue
            if isinstance(value, types.ModuleType):
                if attr not in submodules:
                    continue
                sub = f"{dotted}.{attr}"
                value = proxies.get(sub) or _proxy(value, None, proxies, sub)
                proxies[sub] = value
            setattr(proxy, attr, value)
    for attr in submodules:  # submodules not imported by the package itself
        if not hasattr(proxy, attr):
            sub = f"{dotted}.{attr}"
            proxies[sub] = _proxy(importlib.import_module(sub), None, proxies, sub)
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
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "True",
    "False",
    "None",
    "NotImplemented",
    "Ellipsis",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "Exception",
    "FloatingPointError",
    "IndexError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
    "UnboundLocalError",
    "ImportError",
    "ModuleNotFoundError",
    "TimeoutError",
    "ExceptionGroup",
)


def _safe_type(obj, *rest):
    """type(obj) only, and never a metaclass or a maker of functions, descriptors or frames: the
    3-argument form (or a constructor of interpreter objects) would build code from dict keys."""
    if rest:
        raise TypeError("type() may only be called with one argument in policy code")
    result = type(obj)
    if issubclass(result, type):
        raise TypeError("type() of a class is not available in policy code; compare classes directly")
    if result in _FACTORY_TYPES:
        raise TypeError(f"type() of a {result.__name__} is not available in policy code")
    return result


_FACTORY_TYPES = frozenset(
    {
        property,
        classmethod,
        staticmethod,
        types.FunctionType,
        types.MethodType,
        types.CodeType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        types.MethodDescriptorType,
        types.WrapperDescriptorType,
        types.ClassMethodDescriptorType,
        types.MethodWrapperType,
        types.BuiltinFunctionType,
        types.CellType,
        types.FrameType,
        types.TracebackType,
        types.GeneratorType,
        types.CoroutineType,
        types.AsyncGeneratorType,
        types.ModuleType,
        types.MappingProxyType,
        types.SimpleNamespace,
    }
)


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
        body: dict[str, object] = {"__module__": "capstan.primitives.errors"}
        if builtin == "KeyError":  # KeyError would repr() the message
            body["__str__"] = lambda self: str(self.args[0]) if self.args else ""
        errors[name] = type(name, bases or (Exception,), body)
    return errors


class HostFunctionError(Exception):
    """A host function failed for a reason that is not the program's fault."""
