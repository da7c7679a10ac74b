"""numpy's comparing loops meet object arrays only through copies the program cannot reach
(part of layer 4).

Some of numpy's loops over object arrays keep a borrowed pointer to an item while they call
Python code on it or on another item, then use the pointer again: the in-place
`ndarray.sort()` / `partition()` write their temporaries back, `max`/`min`/`clip` (and the
maximum/minimum/fmax/fmin ufuncs) incref the winner of a comparison, `argmax` keeps the best
so far, `sign`, the logical ufuncs and `lcm` test or compare an item and use it again. If
program code runs inside such a call (every route found so far: cmp_to_key, ChainMap, typing
views, numpy's error and print callbacks, a defaultdict read as a dtype) and rewrites the
array, the loop uses a freed object: a use after free, and from there an escape of the Python
layer. Closing each route leaves these amplifiers in place, so:

- every item of every object array passed to one of them is *pinned* for the call: a copy of
  the array holds a reference to each, so nothing the loop holds can be freed mid-call;
- in-place sorts run on a private copy that is then assigned back (with reference counting).

The numpy functions and ufuncs are wrapped in the module proxies (`substitutes()`); the
methods are reached through calls the worker rewrites: `x.max(...)` becomes
`__inplace__(x, "max")(...)`, which pins or sorts on a copy when `x` is an array holding
objects and is `x.max` otherwise. The static check refuses these method names unless called
at once, so no other way to the methods remains (`np.ndarray.sort(a)` comes through here too).
"""

from __future__ import annotations

import ast
import functools
import inspect
import types

import numpy as np

from capstan.sandbox import guards
from capstan.sandbox.policy import GUARDED_METHODS, IN_PLACE_SORTS

NAME = "__inplace__"
# numpy routines with such loops (ufuncs, then functions); their methods: policy.GUARDED_METHODS
_UFUNCS = (
    "maximum", "minimum", "fmax", "fmin", "sign", "logical_and", "logical_or", "logical_xor",
    "logical_not", "gcd", "lcm",
)  # fmt: skip
_FUNCTIONS = (
    "clip", "max", "min", "amax", "amin", "nanmax", "nanmin", "argmax", "argmin", "nanargmax",
    "nanargmin", "ptp", "all", "any", "searchsorted", "argsort", "argpartition", "sort", "partition",
    "lexsort", "unique", "histogram", "histogram_bin_edges", "histogram2d", "histogramdd",
    "digitize",
)  # fmt: skip
# numpy functions that only build, copy or reshape arrays (no comparing loop over the caller's
# objects): left unwrapped, as they are the ones policies call most
NO_LOOPS = frozenset({
    "array", "asarray", "asanyarray", "ascontiguousarray", "zeros", "ones", "empty", "full",
    "zeros_like", "ones_like", "empty_like", "full_like", "arange", "linspace", "logspace",
    "geomspace", "eye", "identity", "stack", "hstack", "vstack", "dstack", "column_stack",
    "concatenate", "copy", "reshape", "ravel", "transpose", "atleast_1d", "atleast_2d",
    "atleast_3d", "broadcast_to", "expand_dims", "squeeze", "meshgrid",
})  # fmt: skip
_OVERWRITE_INPUT = ("median", "percentile", "quantile", "nanmedian", "nanpercentile", "nanquantile")


def compile_program(source: str, filename: str):
    """The program's code object, with its calls of GUARDED_METHODS routed through `inplace`."""
    return compile(rewrite(ast.parse(source, filename)), filename, "exec", dont_inherit=True)


def rewrite(tree: ast.Module) -> ast.Module:
    """Route the program's calls of guarded methods through `inplace` (locations kept)."""
    return ast.fix_missing_locations(_Rewrite().visit(tree))


class _Rewrite(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in GUARDED_METHODS:
            guard = ast.Call(ast.Name(NAME, ast.Load()), [func.value, ast.Constant(func.attr)], [])
            node.func = ast.copy_location(guard, func)
        return node


def inplace(obj, name: str):
    """`obj.<name>`, except that on an array holding objects it pins or sorts on a copy."""
    method = getattr(obj, name)  # the program's own AttributeError when there is none
    if isinstance(obj, np.ndarray):
        if not obj.dtype.hasobject:
            return method
        if name not in IN_PLACE_SORTS:
            return pinned(method, obj)

        def on_a_copy(*args, **kwargs):
            scratch = obj.copy()  # holds its own references; program code cannot reach it
            result = pinned(getattr(scratch, name))(*args, **kwargs)
            obj[...] = scratch
            return result

        return on_a_copy
    if _is_array_class(obj):  # np.ndarray.sort(a), type(a).max(a)

        def unbound(array, *args, **kwargs):
            if not isinstance(array, np.ndarray):
                return method(array, *args, **kwargs)  # numpy's own TypeError
            return inplace(array, name)(*args, **kwargs)

        return unbound
    return method


def pinned(fn, *receiver):
    """`fn`, holding a reference to every item of the object arrays among `receiver` and its
    arguments (also in short tuples, as `out=(a,)`) for the length of each call."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not receiver:  # the common call holds no object array and no tuple: no copies
            for value in (*args, *kwargs.values()):
                if type(value) is tuple or (isinstance(value, np.ndarray) and value.dtype.hasobject):
                    break
            else:
                return fn(*args, **kwargs)
        keep = _pins(receiver, args, kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            del keep

    return call


class PinnedUfunc:
    """A ufunc whose calls and methods pin the object arrays they are given."""

    __slots__ = ("_call", "_ufunc")

    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc
        self._call = pinned(ufunc)  # made once, not at every call

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self._ufunc, name)
        if name in ("reduce", "accumulate", "reduceat", "outer", "at"):
            return pinned(value)
        return value

    def __repr__(self) -> str:
        return repr(self._ufunc)


def substitutes() -> dict:
    """{numpy routine: its pinning stand-in}, for the module proxies."""
    subs = {getattr(np, name): PinnedUfunc(getattr(np, name)) for name in _UFUNCS}
    subs.update({getattr(np, name): pinned(getattr(np, name)) for name in _FUNCTIONS})
    for name in _OVERWRITE_INPUT:  # pinning does not cover a partition in place: never allow it
        subs[getattr(np, name)] = pinned(_input_kept(getattr(np, name)))
    return subs


def _input_kept(fn):
    """`fn` with overwrite_input=False always (numpy may then partition the caller's array in
    place, writing back items it compared while program code ran)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["overwrite_input"] = False
        return fn(*bound.args, **bound.kwargs)

    return call


def is_plain_function(value) -> bool:
    """A numpy function (Python, builtin or array-function dispatcher), not a class or ufunc."""
    if isinstance(value, (type, np.ufunc)) or not callable(value):
        return False
    return (
        isinstance(value, (types.FunctionType, types.BuiltinFunctionType))
        or type(value).__name__ == "_ArrayFunctionDispatcher"
    )


def _pins(receiver: tuple, args: tuple, kwargs: dict) -> list:
    """Copies of the object arrays among the values (the common call has none: kept cheap)."""
    keep = []
    for values in (receiver, args, kwargs.values()):
        for value in values:
            kind = type(value)
            if kind is tuple and len(value) <= 8:
                keep += _pins((), value, {})
            elif isinstance(value, np.ndarray) and value.dtype.hasobject:
                keep.append(value.copy())
    return keep


def _is_array_class(obj) -> bool:
    if obj in guards.ARRAY_CLASSES.values():
        return True
    return isinstance(obj, type) and issubclass(obj, np.ndarray)
