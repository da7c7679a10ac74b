"""sandbox.inplace: in-place sorts of object arrays run on a private copy."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from sandbox import inplace


class Key:
    """An item whose comparison rewrites the array being sorted (what a route into program
    code inside a comparison would do); numpy's own in-place sort would then write freed
    items back, so these tests only ever sort through `inplace`."""

    def __init__(self, value, array, hits):
        self.value, self.array, self.hits = value, array, hits

    def __lt__(self, other):
        self.hits.append(1)
        if len(self.hits) == 1:
            self.array[:] = None
        return self.value < other.value


@pytest.mark.parametrize("method", ["sort", "partition"])
def test_a_comparison_that_rewrites_the_array_cannot_free_what_the_sort_holds(method):
    a = np.empty(16, dtype="O")
    hits: list = []
    for i in range(16):
        a[i] = Key(16 - i, a, hits)
    args = (8,) if method == "partition" else ()
    inplace.inplace(a, method)(*args)
    assert hits and all(type(x) is Key for x in a)
    values = [x.value for x in a]
    assert sorted(values) == list(range(1, 17))
    if method == "sort":
        assert values == list(range(1, 17))
    else:
        assert values[8] == 9


def test_other_receivers_get_their_own_method():
    x = [3, 1, 2]
    assert inplace.inplace(x, "sort").__self__ is x
    f = np.array([2.0, 1.0])
    assert inplace.inplace(f, "sort").__self__ is f  # no object items: numpy's own sort
    with pytest.raises(AttributeError):
        inplace.inplace(5, "sort")


def test_the_rewrite_keeps_lines_and_covers_nested_calls():
    tree = inplace.rewrite(ast.parse("x = 1\nf(a.sort(key=g(b.partition(2))))"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Call)]
    assert len(calls) == 2
    assert all(c.func.func.id == inplace.NAME and c.lineno == 2 for c in calls)
    assert "sort" not in {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
