"""The static check on its own: what typical policy code may do, and what it may not."""

from __future__ import annotations

import pytest

from capstan.sandbox import policy
from capstan.sandbox.policy import Violation, check

BENIGN = [
    "import numpy as np\nfrom shapely.geometry import Point, Polygon\nret_val = np.mean([1, 2])",
    "from shapely import affinity, ops\nimport shapely.geometry\nimport math, random, itertools",
    "from collections import defaultdict, deque\nfrom typing import List, Optional\nfrom functools import "
    "reduce",
    "def f(x, *args, key=None, **kw):\n    return [y for y in range(x) if y % 2]\nret_val = f(5)",
    "for _ in range(3):\n    pass\ntry:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    msg = str(e)",
    "name = 'red block'\nret_val = f'{name}: {1.5:.2f}' + '{} and {:>4}'.format(1, 2) + '%s' % name",
    "if __name__ == '__main__':\n    pass",
    "def gen():\n    yield 1\nret_val = list(gen())",
    "def gen():\n    for i in range(3):\n        yield i\ntry:\n    ret_val = list(gen())\nexcept "
    "ValueError:\n    pass",
    "try:\n    def gen():\n        yield 1\nfinally:\n    pass",
    "match [1, 2]:\n    case [a, b]:\n        ret_val = a + b",
    "x = type(3)\nret_val = isinstance(3, int)",
]


@pytest.mark.parametrize("code", BENIGN)
def test_benign_code_passes(code):
    assert check(code) == []


@pytest.mark.parametrize(
    ("code", "line", "fragment"),
    [
        ("x = 1\nimport os", 2, "import of 'os'"),
        ("from os import path", 1, "import from 'os'"),
        ("x = (1).__class__", 1, "dunder attribute"),
        ("x = a._private", 1, "private"),
        ("x = g.gi_frame", 1, "frame"),
        ("x = getattr(1, 'real')", 1, "'getattr'"),
        ("x = s.format(1)", 1, "string literals"),
        ("x = '{0.real}'.format(1)", 1, "format strings"),
        ("x = type('X', (), {})", 1, "one argument"),
        ("class A:\n    pass", 1, "class definitions"),
        ("async def f():\n    pass", 1, "async"),
        ("from . import x", 1, "relative"),
        ("from math import *", 1, "import *"),
        ("def f(__x):\n    pass", 1, "dunder name"),
        ("match x:\n    case int(__class__=c):\n        pass", 2, "dunder attribute"),
    ],
)
def test_violations_name_the_line_and_the_cause(code, line, fragment):
    found = check(code)
    assert found, code
    assert found[0].line == line
    assert fragment in found[0].message
    assert found[0].kind == "violation"


@pytest.mark.parametrize(
    "code",
    [
        "x = arr.data\ny = obj.info\nz = suite.test\nw = table.load",  # ordinary attribute names
        "f = blocks.sort\nm = max(map(np.ndarray.max, rows))",  # methods taken as values
        "def g():\n    try:\n        yield 1\n    finally:\n        pass",  # yield inside try
    ],
)
def test_ordinary_code_is_not_refused_for_numpys_sake(code):
    """The static check gives the model clear errors about its API; numpy's C-level memory bugs
    are the OS boundary's to contain, so names and forms they once needed refused pass."""
    assert check(code) == []


def test_syntax_errors_are_their_own_kind():
    [v] = check("def f(:\n")
    assert v.kind == "syntax" and v.line == 1 and "SyntaxError" in v.message
    assert str(v).startswith("line 1:")


def test_extra_modules_extend_the_allowlist():
    assert check("import re") and not check("import re", policy.DEFAULT_MODULES | {"re"})


def test_unbound_names_only_when_asked():
    code = "x = pick('a')\ny = x + z\nfor i in range(2):\n    w = i"
    assert check(code) == []
    found = check(code, allowed_names={"pick"})
    assert [(v.line, v.message.split("'")[1]) for v in found] == [(2, "z")]


def test_violation_count_is_capped_and_sorted():
    code = "\n".join(f"x{i} = a.__dict__" for i in range(50))
    found = check(code)
    assert len(found) == policy.MAX_VIOLATIONS
    assert [v.line for v in found] == sorted(v.line for v in found)
    assert isinstance(found[0], Violation)


def test_pathological_inputs_do_not_crash_the_checker():
    assert check(123)[0].kind == "syntax"
    assert check("x = " + "-" * 50_000 + "1")  # very deep unary chain: refused, no crash
    assert check("x = 1 +" * 20_000 + "1")


def test_star_import_of_an_allowed_module_binds_its_public_names(sb):
    code = (
        "from shapely.geometry import *\nfrom shapely.affinity import *\n"
        "ret_val = rotate(Polygon([(0, 0), (1, 0), (0, 1)]), 90).area"
    )
    assert sb.check(code, []) == []
    assert {"Polygon", "Point", "rotate", "translate", "scale"} <= sb.star_names(code)
    res = sb.run(code, timeout_s=10)
    assert res.ok and abs(res.values["ret_val"] - 0.5) < 1e-9, res.error


def test_star_imports_stay_refused_where_the_names_cannot_be_known():
    # without a source of names the check could not tell which names the program then uses
    assert "import *' is not allowed" in check("from math import *\nx = sqrt(2)")[0].message
    # and a module outside the allowlist is refused whatever it would bind
    found = check("from os import *\nx = getcwd()", allowed_names=[], star_names=lambda m: {"getcwd"})
    assert any("import from 'os'" in v.message for v in found)
    assert any("'getcwd' is not defined" in v.message for v in found)
