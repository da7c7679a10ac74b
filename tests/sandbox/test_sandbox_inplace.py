"""sandbox.inplace: in-place sorts of object arrays run on a private copy."""

from __future__ import annotations

import ast
import weakref

import numpy as np
import pytest

from capstan.sandbox import inplace


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


class Freer:
    """An item whose first comparison drops every item of `array` (the other operand's only
    holder), as program code run mid-loop would; numpy's max/min loops then incref and keep
    the winner, so these tests only call them through the pinning stand-ins."""

    def __init__(self, value, array, hits):
        self.value, self.array, self.hits = value, array, hits

    def _cmp(self, other, op):
        self.hits.append(1)
        if len(self.hits) == 1:
            self.array[:] = None
        return op(self.value, other.value if isinstance(other, Freer) else -1)

    def __ge__(self, other):
        return self._cmp(other, lambda x, y: x >= y)

    def __le__(self, other):
        return self._cmp(other, lambda x, y: x <= y)

    def __gt__(self, other):
        return self._cmp(other, lambda x, y: x > y)

    def __lt__(self, other):
        return self._cmp(other, lambda x, y: x < y)


def _operands():
    hits: list = []
    a, b = np.empty(8, dtype="O"), np.empty(8, dtype="O")
    for i in range(8):
        a[i] = Freer(i % 2, b, hits)
        b[i] = Freer(1 - i % 2, b, hits)  # b holds its items' only references
    return a, b, hits


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_ufunc_winners_stay_alive_when_a_comparison_drops_them(name):
    subs = inplace.substitutes()
    a, b, hits = _operands()
    first = weakref.ref(b[0] if name in ("maximum", "fmax") else a[0])  # the first winner
    out = subs[getattr(np, name)](a, b)
    assert first() is not None, "the winner was freed while the loop still held it"
    assert hits and all(type(x) in (Freer, type(None)) for x in out)
    # the first pair was compared while b's items were dropped: its winner must be alive
    assert type(out[0]) is Freer and out[0].value == (1 if name in ("maximum", "fmax") else 0)


def test_function_and_method_forms_are_pinned_too():
    subs = inplace.substitutes()
    for best in (
        lambda b: subs[np.max](b),
        lambda b: inplace.inplace(b, "max")(),
        lambda b: subs[np.maximum].reduce(b),
    ):
        _a, b, hits = _operands()
        winner = best(b)
        assert hits and type(winner) in (Freer, type(None))
    _a, b, _hits = _operands()
    assert inplace.inplace(b, "argmax")() in range(8)
