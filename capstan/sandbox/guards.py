"""Stand-ins for library callables that would give policy code raw memory or private state.

- `copy`: the real module copies through the pickle protocol (`__reduce_ex__`), which reads
  private and slot state, and `deepcopy(x, memo)` lets the caller's memo collect every
  original it visits: with a host-function stub that reached the worker's channel and its
  real modules. Policy code gets `copy` and `deepcopy` of plain data (containers, numpy arrays,
  numbers, strings, shapely geometries) and a TypeError for anything else.
- `typing`: its aliases forward every non-dunder attribute to the collections.abc origin
  (`typing.Mapping.items(d)` built a real ItemsView whose Python-level `<` looks keys up, so a
  defaultdict's factory, i.e. program code, ran inside numpy's in-place object sort: a use
  after free), and attribute writes went to the shared ABCs. Policy code gets inert type hints
  that can be subscripted and or-ed for annotations, and nothing else.
- `numpy.ndarray` / `numpy.recarray`: built over a caller-supplied buffer, or with strides that
  overlap an object field with an integer one, their bytes are read as object pointers (any
  address becomes an object: a full escape). Policy code gets classes that compare,
  `isinstance`-check and look up attributes like the real ones and take only shape and dtype.
  `type(array)` returns the same stand-in, so `type(a)(shape, "O", buf)` is refused too. (The
  static check refuses the other two routes to an object array's raw memory: `.data` and
  assigning `.strides`.)
"""

from __future__ import annotations

import collections
import functools
import inspect
import types

import numpy as np
from shapely.geometry.base import BaseGeometry  # immutable in shapely 2

# --------------------------------------------------------------------------- copy

_IMMUTABLE = (
    type(None), bool, int, float, complex, str, bytes, range, slice, type(Ellipsis), type(NotImplemented),
    np.generic, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
)  # fmt: skip
# Host-function stubs and other values the worker hands out that are names, not data.
ATOMIC_TYPES: list[type] = []


def _atomic(x) -> bool:
    return isinstance(x, (*_IMMUTABLE, BaseGeometry, *ATOMIC_TYPES))


def _refuse(what: str, x) -> TypeError:
    return TypeError(f"{what}() of a {type(x).__name__} is not available in policy code (plain data only)")


def copy(x):
    """Shallow copy of plain data."""
    if _atomic(x) or type(x) in (tuple, frozenset):
        return x
    if isinstance(x, (list, dict, set, bytearray, collections.deque, np.ndarray)):
        return x.copy()
    raise _refuse("copy", x)


def deepcopy(x):
    """Deep copy of plain data (shared and cyclic references are kept as such)."""
    return _deep(x, {})


def _deep(x, memo: dict):
    if _atomic(x):
        return x
    key = id(x)
    if key in memo:
        return memo[key]
    if isinstance(x, tuple):
        items = [_deep(item, memo) for item in x]
        if key in memo:  # a cycle through a mutable member already made the copy
            return memo[key]
        y = type(x)._make(items) if hasattr(type(x), "_fields") else type(x)(items)
    elif type(x) is list:
        y = memo[key] = []
        y.extend(_deep(item, memo) for item in x)
    elif type(x) in (dict, collections.OrderedDict, collections.Counter, collections.defaultdict):
        y = memo[key] = x.copy()  # the same kind of mapping (and default factory), refilled below
        y.clear()
        for k, v in x.items():
            y[_deep(k, memo)] = _deep(v, memo)
    elif type(x) in (set, frozenset):
        y = type(x)(_deep(item, memo) for item in x)
    elif type(x) is collections.deque:
        y = memo[key] = collections.deque(maxlen=x.maxlen)
        y.extend(_deep(item, memo) for item in x)
    elif type(x) is bytearray:
        y = bytearray(x)
    elif isinstance(x, np.ndarray):
        y = memo[key] = x.copy()
        if x.dtype.hasobject:
            for index in np.ndindex(x.shape):
                y[index] = _deep(x[index], memo)
    else:
        raise _refuse("deepcopy", x)
    memo[key] = y
    return y


def copy_module() -> types.ModuleType:
    module = types.ModuleType("copy", "Copies of plain data (sandboxed; see sandbox/guards.py)")
    module.copy = copy
    module.deepcopy = deepcopy
    module.Error = TypeError
    return module


# --------------------------------------------------------------------------- numpy array classes


class _ArrayClass(type):
    """Metaclass of the stand-ins: behaves like the real class except for construction.
    The real class and its layout arguments live in `_REAL`, not on the stand-in, so that no
    attribute of the stand-in leads back to the real constructor."""

    def __call__(cls, *args, **kwargs):
        real, layout = _REAL[cls]
        given = [name for name in layout if kwargs.get(name) is not None]
        if len(args) > 2 or given:
            raise TypeError(
                f"numpy.{cls.__name__}() takes only shape and dtype in policy code "
                f"({', '.join(layout)} would place the array over memory the program chooses); "
                "use np.array, np.zeros or np.empty"
            )
        return real(*args, **kwargs)

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, _REAL[cls][0])

    def __subclasscheck__(cls, subclass) -> bool:
        real = _REAL[subclass][0] if subclass in _REAL else subclass
        return isinstance(real, type) and issubclass(real, _REAL[cls][0])

    def __getattr__(cls, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_REAL[cls][0], name)

    def __repr__(cls) -> str:
        return repr(_REAL[cls][0])


_REAL: dict[type, tuple[type, tuple[str, ...]]] = {}


def _array_class(real: type, layout: tuple[str, ...]) -> type:
    stand_in = _ArrayClass(real.__name__, (), {})
    _REAL[stand_in] = (real, layout)
    return stand_in


ARRAY_CLASSES: dict[type, type] = {
    # ndarray(shape, dtype, buffer, offset, strides, order); recarray(shape, dtype, buf, offset, strides, ...)
    np.ndarray: _array_class(np.ndarray, ("buffer", "offset", "strides")),
    np.recarray: _array_class(np.recarray, ("buf", "offset", "strides")),
}


class errstate(np.errstate):
    """np.errstate without `call=`: numpy calls that function on a floating-point error, and a
    numpy scalar's error inside a comparison (a Fraction over np.int64 that overflows) ran it
    in the middle of an object array's in-place sort, which then wrote back objects the
    function had freed (a worker segfault). np.seterrcall is left out of the proxy for this."""

    def __init__(self, *, call=None, **modes):
        if call is not None:
            raise TypeError("np.errstate(call=...) is not available in policy code; use 'raise' or 'ignore'")
        super().__init__(**modes)


class defaultdict(collections.defaultdict):
    """collections.defaultdict whose default factory is a class (list, int, set, dict, ...)
    or functools.partial of one with plain arguments. A program-defined factory would run
    whenever C code looks a key up through the mapping protocol: numpy turning a dict into a
    dtype did so in the middle of np.maximum's object loop, which then kept a freed object."""

    def __init__(self, default_factory=None, /, *args, **kwargs):
        if not _plain_factory(default_factory):
            raise TypeError(
                "defaultdict's factory must be a type such as list, int, set or dict (or "
                "functools.partial of one) in policy code; use d.get(key, default) or d.setdefault"
            )
        super().__init__(default_factory, *args, **kwargs)


def _plain_factory(factory) -> bool:
    if factory is None or isinstance(factory, type):
        return True
    return (
        type(factory) is functools.partial
        and isinstance(factory.func, type)
        and all(
            isinstance(a, type) or type(a) in (int, float, str, bool, type(None))
            for a in (*factory.args, *factory.keywords.values())
        )
    )


def _no_print_callbacks(real, takes=None, refused=("formatter", "override_repr")):
    """`real` (a numpy print-option function) without its callable options: numpy calls them
    for every str()/repr() of an array, and str() of an array happens inside numpy's C loops
    (a StringDType's missing-value object is turned into a string whenever such a dtype is
    made, e.g. mid-comparison in an object array's in-place sort: use after free)."""
    signature = inspect.signature(takes or real)

    def guarded(*args, **kwargs):
        given = signature.bind(*args, **kwargs).arguments
        for name in refused:
            if given.get(name) is not None:
                raise TypeError(f"np.{real.__name__}({name}=...) is not available in policy code")
        return real(*args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = real.__name__
    guarded.__doc__ = real.__doc__
    return guarded


class _PrintOptions:
    """What np.printoptions(...) returns in policy code: a context manager and nothing else
    (numpy's is contextlib's, whose `.func` is the unchecked generator function)."""

    __slots__ = ("_manager",)

    def __init__(self, manager):
        self._manager = manager

    def __enter__(self):
        return self._manager.__enter__()

    def __exit__(self, *exc):
        return self._manager.__exit__(*exc)


def _printoptions(*args, **kwargs) -> _PrintOptions:
    return _PrintOptions(_checked_printoptions(*args, **kwargs))


_checked_printoptions = _no_print_callbacks(np.printoptions, takes=np.set_printoptions)


def seal_ufunc_errors() -> None:
    """numpy's ufunc errors keep the real ufunc and DType classes (`.ufunc`, `.dtypes`, in
    `.args`), i.e. what the proxies replace or refuse (the unpinned np.maximum, StringDType).
    In the worker they keep only their message. Called once, before any program runs."""
    from numpy._core import _exceptions

    classes = [
        c
        for c in vars(_exceptions).values()
        if isinstance(c, type) and issubclass(c, _exceptions.UFuncTypeError)
    ]
    texts = {cls: cls.__str__ for cls in classes}  # each class's own message, before patching
    for cls in classes:
        cls.__init__ = _message_only(cls, cls.__init__, texts)
        cls.__str__ = BaseException.__str__


def _message_only(cls, init, texts):
    def __init__(self, *args):
        init(self, *args)
        if type(self) is cls:  # the outermost __init__: the instance is complete
            text = texts[cls](self)
            self.__dict__.clear()
            BaseException.__init__(self, text)

    return __init__


def substitutes() -> dict[int, object]:
    """{id(real object): its stand-in, or None to leave it out}, applied to every attribute of
    every module proxy: modules re-export each other's names (statistics.defaultdict,
    shapely.ops.warn), so what one proxy replaces must not come back through another."""
    import warnings

    subs = {
        collections.defaultdict: defaultdict,
        np.errstate: errstate,  # no error callback
        np.seterrcall: None,
        np.geterrcall: None,
        np.set_printoptions: _no_print_callbacks(np.set_printoptions),
        np.array2string: _no_print_callbacks(np.array2string),
        np.printoptions: _printoptions,
        functools.cmp_to_key: None,  # runs program code inside `<`
        collections.ChainMap: None,  # its == looks keys up in its maps (defaultdict factories)
        warnings.warn: None,  # writes into the caller's globals, reads source files
        warnings.warn_explicit: None,
        **ARRAY_CLASSES,  # no array over a caller-supplied buffer
    }
    from capstan.sandbox import inplace

    subs.update(inplace.substitutes())  # numpy routines whose object loops need pinning
    return {id(real): stand_in for real, stand_in in subs.items()}


# --------------------------------------------------------------------------- typing


class TypeHint:
    """An annotation-only stand-in: `List[int]`, `Optional[str]`, `Dict[str, List[int]] | None`
    all evaluate (to a hint); attributes, calls and isinstance() are not available."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getitem__(self, params) -> TypeHint:
        return self

    def __or__(self, other) -> TypeHint:
        return self

    __ror__ = __or__

    def __call__(self, *args, **kwargs):
        raise TypeError(f"typing.{self._name} is only a type hint in policy code")

    def __repr__(self) -> str:
        return f"typing.{self._name}"


def typing_module(names) -> types.ModuleType:
    module = types.ModuleType("typing", "Type hints for annotations (sandboxed; see sandbox/guards.py)")
    for name in names:
        setattr(module, name, TypeHint(name))
    return module
