"""Object arrays are sorted in place only through a private copy (part of layer 4).

numpy's in-place `ndarray.sort()` / `partition()` of an object array keeps borrowed pointers
to the items while it compares them. If program code runs inside a comparison (every route
found so far: cmp_to_key, ChainMap, typing views, numpy's error and print callbacks) and
rewrites the array, the sort writes freed objects back: a use after free, and from there an
escape of the Python layer. Closing each route leaves the amplifier in place, so the worker
rewrites every call `x.sort(...)` / `x.partition(...)` of the program into
`__inplace__(x, "sort")(...)`: for an array holding objects that sorts a copy the program
cannot reach, then assigns it back (with reference counting); anything else gets its own
method. The static check refuses `.sort` / `.partition` that are not called at once, so no
other way to the method remains (`np.ndarray.sort(a)` comes through here as well).
"""

from __future__ import annotations

import ast

import numpy as np

from sandbox import guards
from sandbox.policy import IN_PLACE_SORTS as METHODS

NAME = "__inplace__"


def compile_program(source: str, filename: str):
    """The program's code object, with its in-place sorts routed through `inplace`."""
    return compile(rewrite(ast.parse(source, filename)), filename, "exec", dont_inherit=True)


def rewrite(tree: ast.Module) -> ast.Module:
    """Route the program's in-place sort calls through `inplace` (locations kept)."""
    return ast.fix_missing_locations(_Rewrite().visit(tree))


class _Rewrite(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in METHODS:
            guard = ast.Call(ast.Name(NAME, ast.Load()), [func.value, ast.Constant(func.attr)], [])
            node.func = ast.copy_location(guard, func)
        return node


def inplace(obj, name: str):
    """`obj.<name>`, except that an array holding objects is sorted on a private copy."""
    method = getattr(obj, name)  # the program's own AttributeError when there is none
    if isinstance(obj, np.ndarray):
        if not obj.dtype.hasobject:
            return method

        def on_a_copy(*args, **kwargs):
            scratch = obj.copy()  # holds its own references; program code cannot reach it
            result = getattr(scratch, name)(*args, **kwargs)
            obj[...] = scratch
            return result

        return on_a_copy
    if _is_array_class(obj):  # np.ndarray.sort(a), type(a).partition(a, k)

        def unbound(array, *args, **kwargs):
            if not isinstance(array, np.ndarray):
                return method(array, *args, **kwargs)  # numpy's own TypeError
            return inplace(array, name)(*args, **kwargs)

        return unbound
    return method


def _is_array_class(obj) -> bool:
    if obj in guards.ARRAY_CLASSES.values():
        return True
    return isinstance(obj, type) and issubclass(obj, np.ndarray)
