"""Red team: hostile programs, each refused or contained, and the host unharmed afterwards.

The groups:
- STATIC: refused by the static policy before any worker runs ("violation"/"syntax").
- RUNTIME: pass the static check but are contained at run time (timeout, memory, capped
  output, hostile arguments to host functions, ...).
- PYTHON_LAYER: the static check is switched off; module proxies, the restricted builtins
  and the guarded import refuse on their own.
- C_LEVEL: aimed at numpy's C-level memory bugs; they may run, fail or crash their worker,
  and the next run still works.
- OS: with the static check off (`_unsafe_skip_static_check=True`) the payload escapes the
  Python layer with a subclass walk to the real `os` module and builtins, simulating a full
  bypass of the Python layers; bubblewrap, seccomp and rlimits must still refuse it.
Canary files are snapshotted before and compared after the whole suite.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from capstan.primitives.errors import InvalidArgumentError
from capstan.sandbox import ERROR_KINDS

REPO = Path(__file__).resolve().parents[2]
# One canary per test process: concurrent test runs on one machine must not see each other's files.
CANARY = Path(tempfile.mkdtemp(prefix=f"capstan-redteam-canary-{os.getuid()}-"))
CANARY.chmod(0o755)  # as readable as an ordinary directory: the isolation, not the mode, must hide it
atexit.register(shutil.rmtree, CANARY, ignore_errors=True)
(CANARY / "keep.txt").write_text("do not touch\n")
SECRET = CANARY / "secret.txt"
SECRET.write_text("TOP-SECRET-CANARY\n")


@dataclass(frozen=True)
class Payload:
    id: str
    code: str
    kinds: tuple[str, ...]  # acceptable error kinds ("ok" when the run may succeed)
    timeout_s: float = 5.0
    expect: str = ""  # substring that must appear in the error message or stdout


# tenth pass (a full escape of the Python layer, static check on): a namedtuple registered as
# a virtual Fraction makes Fraction's `<` multiply a StringDType array whose na_object is an
# array; making the product's dtype turns na_object into a string, i.e. calls the program's
# print formatter, in the middle of an object array's in-place sort (use after free)
STRINGDTYPE_SORT = """import numpy as np
import statistics
from collections import namedtuple
F = statistics.Fraction
NT = namedtuple('NT', 'numerator denominator')
F.register(NT)
S = type(np.dtype('T'))
a = np.empty(16, dtype='O')
state = [0]
def fmt(x):
    if state[0]:
        state[0] = 0
        a[:] = None
    return 'x'
np.set_printoptions(formatter={'all': fmt})
Y = np.array([1.0])
for i in range(16):
    a[i] = F(NT(np.array([str(i)], dtype=S(na_object=Y)), 1))
state[0] = 1
try:
    a.sort()
except TypeError as e:
    pass
"""


MEDIAN_OVERWRITE = """import numpy as np
import collections
state = {"n": 0}
arr = np.empty(9, dtype="O")
def fmt(x):
    state["n"] += 1
    if state["n"] == 1:
        for i in range(9):
            arr[i] = 0
    return "F"
g = np.printoptions().func(formatter={"all": fmt})
next(g)
arr[0] = np.dtype("f8")
arr[1] = collections.deque([np.array([1.0])])
for i in range(2, 9):
    arr[i] = bytearray(b"A" * (40 + i))
try:
    np.median(arr, overwrite_input=True)
except Exception as e:
    pass
"""


def _static(id_, code, *extra):
    return Payload(id_, code, ("violation", "syntax", *extra))


STATIC = [
    _static("subclass_walk", "x = ().__class__.__base__.__subclasses__()"),
    # a generator closed while suspended in try/with runs program code wherever its last
    # reference goes, e.g. in numpy's object loops between reading and using an item
    _static(
        "generator_finalizer",
        "import numpy as np\na = np.empty(4, dtype='O')\ndef g():\n    try:\n        yield 1\n"
        "    finally:\n        a[:] = None\nfor i in range(4):\n    x = g()\n    next(x)\n    a[i] = x",
    ),
    _static("generator_with_exit", "def g(cm):\n    with cm:\n        yield 1"),
    _static(
        "abc_register",
        "import statistics\nfrom collections import namedtuple\nstatistics.Fraction.register(namedtuple('N', "
        "'a'))",
    ),
    _static("mro_walk", "x = [].__class__.__mro__[1].__subclasses__()"),
    _static("type_mro", "x = type(()).mro()[-1]"),
    _static("object_name", "x = object"),
    _static("getattr_dunder", "x = getattr((), '__class__')"),
    _static("getattr_alias", "g = getattr\nx = g(1, 'real')"),
    _static("vars_module", "import numpy as np\nx = vars(np)"),
    _static("globals_builtins", "x = globals()['__builtins__']"),
    _static("locals_call", "x = locals()"),
    _static("builtins_name", "x = __builtins__['open']"),
    _static("dunder_import", "os = __import__('os')"),
    _static("import_os", "import os\nos.system('id')"),
    _static("import_subprocess", "import subprocess"),
    _static("from_os_system", "from os import system"),
    _static("import_sys", "import sys\nsys.modules['os']"),
    _static("import_socket", "import socket\nsocket.socket()"),
    _static("import_ctypes", "import ctypes"),
    _static("import_re_redos", "import re\nre.match('(a+)+$', 'a' * 40 + 'b')"),
    _static("import_numpy_npyio", "import numpy.lib.npyio as io"),
    _static("numpy_lib_os", "import numpy as np\nx = np.lib.npyio.os"),
    _static("numpy_core_private", "import numpy as np\nx = np._core.multiarray"),
    _static("numpy_ctypeslib", "import numpy as np\nx = np.ctypeslib.as_array"),
    _static("numpy_testing", "import numpy as np\nnp.testing.assert_equal(1, 1)"),
    _static("from_numpy_load", "from numpy import load"),
    _static("np_load_pickle", "import numpy as np\nx = np.load('/etc/passwd', allow_pickle=True)"),
    _static("np_save", "import numpy as np\nnp.save('/tmp/x.npy', np.zeros(3))"),
    _static("np_savez", "import numpy as np\nnp.savez('/tmp/x.npz', a=np.zeros(3))"),
    _static("np_fromfile", "import numpy as np\nx = np.fromfile('/etc/passwd')"),
    _static("arr_tofile", "import numpy as np\nnp.zeros(3).tofile('/tmp/x')"),
    _static("np_memmap", "import numpy as np\nm = np.memmap('/tmp/x', mode='w+', shape=(3,))"),
    _static("np_loadtxt", "import numpy as np\nx = np.loadtxt('/etc/passwd')"),
    _static("np_genfromtxt", "import numpy as np\nx = np.genfromtxt('/etc/passwd')"),
    _static("np_datasource", "import numpy as np\nd = np.DataSource('/')"),
    _static("arr_dump", "import numpy as np\nnp.zeros(3).dump('/tmp/x')"),
    _static("arr_dumps", "import numpy as np\nx = np.zeros(3).dumps()"),
    _static("arr_ctypes_pointer", "import numpy as np\np = np.zeros(3).ctypes.data"),
    _static("bitgen_ctypes", "import numpy as np\nx = np.random.default_rng().bit_generator.ctypes"),
    _static("as_strided", "from numpy.lib.stride_tricks import as_strided"),
    _static("shapely_lib", "from shapely import lib"),
    _static("shapely_geos", "import shapely.geos"),
    _static("shapely_submodule", "import shapely.geometry.base as b\nx = b.lib"),
    _static("generator_frame", "g = (i for i in [1])\nx = g.gi_frame.f_back.f_globals"),
    _static("generator_code", "def f():\n    yield 1\nx = f().gi_code"),
    _static("traceback_frame", "try:\n    1 / 0\nexcept Exception as e:\n    x = e.__traceback__.tb_frame"),
    _static("lambda_globals", "x = (lambda: 0).__globals__"),
    _static("host_fn_globals", "x = get_obj_pos.__call__.__globals__"),
    _static("host_fn_private", "x = get_obj_pos._call"),
    _static("format_attr", "x = '{0.__class__}'.format(1)"),
    _static("format_index", "x = '{0[0]}'.format([get_obj_pos])"),
    _static("format_nonliteral", "f = '{0.real}'\nx = f.format(1)"),
    _static("str_format_unbound", "x = str.format('{0.real}', 1)"),
    _static("format_map", "x = '{a}'.format_map({'a': 1})"),
    _static("format_nested_spec", "x = '{0:{1.real}}'.format(1, 2)"),
    _static("type_three_args", "X = type('X', (), {})"),
    _static("class_def", "class X:\n    pass"),
    _static("async_def", "async def f():\n    pass"),
    _static("eval_call", "x = eval('1 + 1')"),
    _static("exec_call", "exec('x = 1')"),
    _static("compile_call", "c = compile('1', 'f', 'eval')"),
    _static("open_file", "x = open('/etc/passwd').read()"),
    _static("breakpoint_call", "breakpoint()"),
    _static("memoryview_call", "m = memoryview(b'x')"),
    _static("attrgetter", "import operator\nx = operator.attrgetter('real')(1)"),
    _static("random_private", "import random\nx = random._os"),
    _static("attribute_error_obj", "try:\n    (1).nope\nexcept AttributeError as e:\n    x = e.obj"),
    _static("star_import_of_a_refused_module", "from os import *"),  # allowed modules may be star-imported
    _static("relative_import", "from . import x"),
    _static("dunder_function_name", "def __init__():\n    pass"),
    _static("syntax_nul_byte", "x = 1\0"),
    _static("too_deep_nesting", "x = " + "(" * 300 + "1" + ")" * 300),
    _static("huge_program", "x = 1\n" * 120_000),
    # found by the third session's red team (each got past the check before):
    _static(
        "metaclass_match_getattr",
        "T = type(int)\nMeta = T('Meta', (T,), {'__instancecheck__': lambda c, i: True})\n"
        "def ga(obj, name):\n    M = Meta('M', (), {'__match_args__': (name,)})\n"
        "    match obj:\n        case M(v):\n            return v\n"
        "x = ga(ga((), '__class__'), '__base__')",
    ),
    # third pass: an object array's raw memory, through its memoryview or overlapping strides
    _static("object_array_data_cast", "import numpy as np\na = np.zeros(1, dtype='O')\nm = a.data.cast('B')"),
    _static(
        "strides_overlap_object_field",
        "import numpy as np\na = np.zeros(2, dtype=[('o', 'O'), ('i', 'u8')])\nw = a['i']\nw.strides = (8,)",
    ),
    # fourth pass: ndarray.resize reallocates under its views (read/write freed memory)
    _static(
        "resize_use_after_free",
        "import numpy as np\nb = np.zeros(4096, 'u8')\nv = b[:]\nb.resize(10 ** 6, refcheck=False)\n"
        "o = np.empty(4096, 'O')\nx = [1]\nv[5] = id(x)",
    ),
    _static("resize_through_base", "import numpy as np\nv = np.zeros(4096, 'u8')[:]\nv.base.resize(10 ** 6)"),
    _static(
        "resize_unbound", "import numpy as np\nb = np.zeros(8)\nnp.ndarray.resize(b, 10 ** 6, refcheck=False)"
    ),
    _static(
        "resize_by_match",
        "import numpy as np\nmatch np.zeros(8):\n    case np.ndarray(resize=r):\n        r(10)",
    ),
    # eighth pass: a property set on a library class ran program code inside its comparisons
    _static(
        "property_on_library_class",
        "import statistics\nF = statistics.Fraction\ndef f(self):\n    return 1\nF.denominator = "
        "type(F.numerator)(f)",
    ),
    _static("typing_alias_writes_abc", "import typing\ntyping.Iterable.zzz = 5"),
    _static("module_attribute_store", "import math\nmath.pi = 3"),
    _static("attribute_delete", "import math\ndel math.pi"),
    _static("match_positional_subpattern", "match 1:\n    case int(x):\n        y = x"),
    _static("format_method_stored", "f = '{0.__class__.__mro__}'.format\nx = f(1)"),
    _static("format_unbound_str_method", "f = str.format\nx = f('{0.__class__}', 1)"),
    _static("format_method_mapped", "x = list(map('{0.real}'.format, [1]))"),
]


def _runtime(id_, code, kinds, timeout_s=5.0, expect=""):
    return Payload(id_, code, tuple(kinds), timeout_s, expect)


RUNTIME = [
    _runtime("infinite_loop", "while True:\n    pass", ["timeout"], 1.0),
    _runtime(
        "swallow_everything_loop",
        "while True:\n    try:\n        1 / 0\n    except BaseException:\n        pass",
        ["timeout"],
        1.0,
    ),
    _runtime("huge_int_power_c_level", "x = 7 ** (10 ** 9)", ["timeout"], 1.0),
    _runtime("int_to_str_huge", "x = str(10 ** 100000)", ["policy"], 5.0, "ValueError"),
    _runtime(
        "numpy_giant_sort",
        "import numpy as np\na = np.random.rand(2 * 10 ** 7)\nwhile True:\n    np.sort(a)",
        ["timeout", "memory"],
        1.0,
    ),
    _runtime("memory_bytearray", "x = bytearray(10 ** 10)", ["memory"]),
    _runtime("memory_list", "x = [0] * 10 ** 10", ["memory"]),
    _runtime("memory_numpy", "import numpy as np\nx = np.ones((10 ** 5, 10 ** 5))", ["memory"]),
    _runtime("memory_growth", "x = []\nwhile True:\n    x.append(bytearray(10 ** 7))", ["memory"], 10.0),
    _runtime("recursion_bomb", "def f(n):\n    return f(n + 1) + 1\nf(0)", ["policy"], 5.0, "RecursionError"),
    _runtime(
        "mutual_recursion",
        "def a():\n    return b()\ndef b():\n    return a()\na()",
        ["policy"],
        5.0,
        "RecursionError",
    ),
    _runtime(
        "huge_output", "for i in range(100000):\n    print('x' * 100)", ["ok"], 10.0, "output truncated"
    ),
    _runtime("print_to_file", "print('x', file=1)", ["policy"], 5.0, "file="),
    _runtime("type_three_args_alias", "t = type\nX = t('X', (), {})", ["policy"], 5.0, "one argument"),
    _runtime("host_nan", "get_obj_pos(float('nan'))", ["primitive"], 5.0, "finite"),
    _runtime("host_huge_list", "get_obj_pos(list(range(10 ** 6)))", ["primitive"], 5.0, "limit"),
    _runtime(
        "host_deep_nesting",
        "x = []\nfor _ in range(1000):\n    x = [x]\nget_obj_pos(x)",
        ["primitive"],
        5.0,
        "deeper",
    ),
    _runtime("host_function_arg", "get_obj_pos(lambda: 0)", ["primitive"], 5.0, "cannot be sent"),
    _runtime("host_module_arg", "import numpy as np\nget_obj_pos(np)", ["primitive"], 5.0, "cannot be sent"),
    _runtime(
        "host_object_dtype",
        "import numpy as np\nget_obj_pos(np.array([None, 1]))",
        ["primitive"],
        5.0,
        "dtype",
    ),
    _runtime("host_wrong_arity", "get_obj_pos()", ["policy"], 5.0, "TypeError"),
    _runtime("host_bad_kwarg", "get_obj_pos('a', evil=1)", ["policy"], 5.0, "TypeError"),
    _runtime("host_wrong_type", "get_obj_pos({'a': 1})", ["primitive"], 5.0, "InvalidArgumentError"),
    _runtime("host_call_storm", "for i in range(2000):\n    get_obj_pos('red block')", ["ok"], 20.0),
    _runtime("return_module", "import numpy as np\nret_val = np", ["policy"], 5.0, "cannot leave"),
    _runtime("return_huge", "ret_val = 'x' * (20 * 2 ** 20)", ["policy"], 10.0, "limit"),
    _runtime("return_set", "ret_val = {1, 2}", ["policy"], 5.0, "cannot leave"),
    _runtime("type_of_a_class", "T = type(int)", ["policy"], 5.0, "type() of a class"),
    # copy's pickle protocol with a hostile memo handed out the worker's channel and modules
    _runtime(
        "deepcopy_with_hostile_memo",
        "import copy\nimport collections\nm = collections.OrderedDict()\ncopy.deepcopy(get_obj_pos, m)",
        ["policy"],
        5.0,
        "cannot be pickled or copied",
    ),
    _runtime(
        "deepcopy_of_a_module",
        "import copy\nimport numpy as np\ncopy.deepcopy(np)",
        ["policy"],
        5.0,
        "cannot pickle",
    ),
    _runtime(
        "copy_of_host_function_is_refused",
        "import copy\nret_val = copy.deepcopy(get_obj_pos) is get_obj_pos",
        ["policy"],
        expect="a host function cannot be pickled or copied",
    ),
    # an object-dtype array over the program's bytes turns any address into an object
    _runtime(
        "ndarray_object_buffer",
        "import numpy as np\ny = np.ndarray((1,), dtype='O', buffer=bytearray((7).to_bytes(8, 'little')))",
        ["policy"],
        5.0,
        "only shape and dtype",
    ),
    _runtime(
        "type_of_array_object_buffer",
        "import numpy as np\nA = type(np.zeros(1))\ny = A((1,), 'O', bytearray(8))",
        ["policy"],
        5.0,
        "only shape and dtype",
    ),
    _runtime(
        "recarray_object_buffer",
        "import numpy as np\ny = np.recarray((1,), dtype=[('f', 'O')], buf=bytearray(8))",
        ["policy"],
        5.0,
        "only shape and dtype",
    ),
    # fifth pass: program code inside an object array's in-place sort, rewriting that array
    _runtime(
        "sort_with_mutating_comparison",
        "import functools\nimport numpy as np\na = np.empty(16, dtype='O')\n"
        "def cmp(x, y):\n    a[:] = None\n    return 1\nK = functools.cmp_to_key(cmp)\n"
        "for i in range(16):\n    a[i] = [K(i)]\na.sort()",
        ["policy"],
        5.0,
        "cmp_to_key",
    ),
    _runtime(
        "sort_with_chainmap_defaultdict_comparison",
        "from collections import ChainMap, defaultdict\nimport numpy as np\na = np.empty(16, dtype='O')\n"
        "def f():\n    a[:] = None\n    return 1\n"
        "for i in range(16):\n    a[i] = [ChainMap(defaultdict(f), {'k': 1}), 16 - i]\na.sort()",
        ["policy"],
        5.0,
        "ChainMap",
    ),
    # seventh pass: typing aliases forward attributes to collections.abc (ItemsView's Python <)
    _runtime(
        "sort_with_typing_itemsview_comparison",
        "import numpy as np\nimport typing\nfrom collections import defaultdict\na = np.empty(16, "
        "dtype='O')\n"
        "def f():\n    a[:] = None\n    return 1\n"
        "for i in range(16):\n    d = defaultdict(f)\n    d[(i, 0)] = 0\n    a[i] = "
        "typing.Mapping.items(d)\na.sort()",
        ["policy"],
        5.0,
        "defaultdict's factory",  # since the 11th pass; typing.Mapping.items is gone too (test_guards)
    ),
    # ninth pass: numpy's floating-point error callback runs program code inside a comparison
    # (a Fraction over np.int64 overflows while an object array sorts in place): segfault
    _runtime(
        "sort_with_errcall_in_comparison",
        "import numpy as np\nimport statistics\nF = statistics.Fraction\nn = [0, 0]\nbox = [None]\n"
        "def cb(kind, flag):\n    n[0] += 1\n    if n[0] == n[1]:\n"
        "        for i in range(12):\n            box[0][i] = F(i, 1)\n"
        "np.seterr(all='call')\nnp.seterrcall(cb)\n"
        "for k in range(1, 120):\n    n[0], n[1] = 0, k\n    a = box[0] = np.empty(12, dtype='O')\n"
        "    for i in range(12):\n        a[i] = F(np.int64(2 ** 62 - 7 * i), 3 + i)\n    a.sort()",
        ["policy"],
        5.0,
        "no attribute 'seterrcall'",
    ),
    _runtime(
        "errstate_call",
        "import numpy as np\ndef cb(kind, flag):\n    pass\nwith np.errstate(call=cb, all='call'):\n    pass",
        ["policy"],
        5.0,
        "errstate(call=...) is not available",
    ),
    _runtime(
        "type_of_errstate_call",
        "import numpy as np\ndef cb(kind, flag):\n    pass\nE = type(np.errstate())\nwith E(call=cb):\n    "
        "pass",
        ["policy"],
        5.0,
        "errstate(call=...) is not available",
    ),
    _runtime(
        "errstate_modes_still_work",
        "import numpy as np\nwith np.errstate(divide='ignore', invalid='ignore'):\n"
        "    ret_val = str(np.float64(1.0) / np.float64(0.0))",
        ["ok"],
    ),
    _runtime(
        "print_formatter_callback",
        "import numpy as np\ndef f(x):\n    return 'x'\nnp.set_printoptions(formatter={'all': f})",
        ["policy"],
        5.0,
        "formatter=...) is not available",
    ),
    _runtime(
        "print_formatter_positional",
        "import numpy as np\nnp.set_printoptions(None, None, None, None, None, None, None, {'all': str})",
        ["policy"],
        5.0,
        "formatter=...) is not available",
    ),
    _runtime(
        "print_override_repr_in_context",
        "import numpy as np\nwith np.printoptions(override_repr=repr):\n    pass",
        ["policy"],
        5.0,
        "override_repr=...) is not available",
    ),
    _runtime(
        "array2string_formatter",
        "import numpy as np\nx = np.array2string(np.zeros(2), formatter={'all': str})",
        ["policy"],
        5.0,
        "formatter=...) is not available",
    ),
    _runtime(
        "print_options_still_work",
        "import numpy as np\nnp.set_printoptions(precision=2)\nwith np.printoptions(suppress=True):\n"
        "    ret_val = str(np.array([1 / 3])) + np.array2string(np.array([2 / 3]), precision=1)",
        ["ok"],
        5.0,
    ),
    _runtime(
        "stringdtype_class_na_object",
        "import numpy as np\nS = type(np.dtype('T'))\nd = S(na_object=np.zeros(1))",
        ["policy"],
        5.0,
        "type() of a numpy dtype",
    ),
    _runtime("stringdtype_sort_escape", STRINGDTYPE_SORT, ["violation"], 5.0, "'register'"),
    # eleventh pass (a full escape, static check on): numpy reads a dict it turns into a dtype
    # through the mapping protocol, so a defaultdict's factory ran inside np.maximum's object
    # loop, which then kept the freed dict; a bytearray spray over it gave read/write anywhere
    _runtime(
        "maximum_with_defaultdict_dtype",
        "import numpy as np\nfrom collections import defaultdict\nN = 8\na = np.empty(N, dtype='O')\n"
        "b = np.empty(N, dtype='O')\ndef f():\n    b[:] = None\n    raise KeyError('x')\n"
        "for i in range(N):\n    a[i] = np.dtype('f8')\n    b[i] = defaultdict(f, names=['x'], "
        "formats=['f8'])\n"
        "r = np.maximum(a, b)",
        ["policy"],
        5.0,
        "defaultdict's factory",
    ),
    _runtime(
        "defaultdict_through_statistics",
        "import statistics\ndef f():\n    return 0\nd = statistics.defaultdict(f)",
        ["policy"],
        5.0,
        "defaultdict's factory",
    ),
    _runtime(
        "defaultdict_of_classes_still_works",
        "from collections import defaultdict\nfrom functools import partial\nd = defaultdict(list)\n"
        "d['a'].append(1)\ne = defaultdict(partial(defaultdict, int))\ne['x']['y'] += 2\n"
        "ret_val = [dict(d), e['x']['y'], type(d) is type(defaultdict(int))]",
        ["ok"],
    ),
    _runtime("id_builtin_gone", "x = id(1)", ["policy"], 5.0, "name 'id' is not defined"),
    # twelfth pass (a worker segfault, static check on): np.printoptions' context manager
    # exposed numpy's unchecked generator (.func) to set a formatter; a dtype compared with an
    # object it cannot read reprs it (the formatter ran mid-partition); median(overwrite_input=
    # True) partitioned the caller's object array in place, where pinning does not help
    _runtime("printoptions_func_median_overwrite", MEDIAN_OVERWRITE, ["policy"], 5.0, "no attribute 'func'"),
    _runtime(
        "median_never_overwrites_input",
        "import numpy as np\nb = np.array([5, 3, 9, 1, 7, 2, 8], dtype='O')\n"
        "m = np.percentile(b, 50, None, None, True)\nret_val = [float(m), b.tolist()]",
        ["ok"],
        5.0,
    ),
    # numpy's ufunc errors kept the real ufunc (unpinned np.maximum) and DType classes
    _runtime(
        "ufunc_error_keeps_no_ufunc",
        "import numpy as np\ntry:\n    np.maximum(np.array(['a']), np.array([1.0]))\nexcept TypeError as e:\n"
        "    err = e\nm = err.ufunc",
        ["policy"],
        5.0,
        "no attribute 'ufunc'",
    ),
    _runtime(
        "ufunc_error_args_are_text",
        "import numpy as np\ntry:\n    np.array(['x'], dtype='T') < np.array([1.0])\nexcept TypeError as e:\n"
        "    ret_val = [isinstance(a, str) for a in e.args]",
        ["ok"],
        5.0,
    ),
    # thirteenth pass (a worker segfault, static check on): shapely's CoordinateSequence built
    # over a namedtuple ran program code from its len(), so bool() of an item in numpy's
    # object -> bool cast (astype) freed the item the cast then reused on its error path
    _runtime(
        "coordinate_sequence_over_namedtuple",
        "from collections import namedtuple\nimport numpy as np\nfrom shapely.geometry import Point\n"
        "CS = type(Point(0, 0).coords)\nT = namedtuple('T', ['tolist'])\nC2 = namedtuple('C2', ['a', "
        "'shape'])\n"
        "C1 = namedtuple('C1', ['shape'])\nsrc = np.empty(1, dtype='O')\ndef evil():\n    src[0] = None\n"
        "    return [1]\ncs2 = CS(C2(T(evil), (1,)))\nsrc[0] = CS(C1(cs2))\nsrc.astype(bool)",
        ["policy"],
        5.0,
        "type() of a CoordinateSequence",
    ),
    _runtime(
        "geometry_sequence_class",
        "from shapely.geometry import MultiPoint\nGS = type(MultiPoint([(0, 0), (1, 1)]).geoms)",
        ["policy"],
        5.0,
        "type() of a GeometrySequence",
    ),
    _runtime(
        "shapely_sequences_still_work",
        "from shapely.geometry import MultiPoint, Polygon\nm = MultiPoint([(0, 0), (1, 1)])\n"
        "ret_val = [len(m.geoms), list(Polygon([(0, 0), (1, 0), (1, 1)]).exterior.coords)[1], bool(m.geoms)]",
        ["ok"],
        5.0,
    ),
    _runtime(
        "typing_hints_still_annotate",
        "from typing import Dict, List, Optional\ndef f(x: List[int], y: Optional[Dict[str, List[int]]] = "
        "None) -> List[int]:\n"
        "    return x\nret_val = f([1])",
        ["ok"],
    ),
    _runtime(
        "ndarray_overlapping_strides",
        "import numpy as np\na = np.ndarray((2,), [('o', 'O'), ('i', 'u8')], strides=(8,))",
        ["policy"],
        5.0,
        "only shape and dtype",
    ),
    _runtime(
        "type_of_numpy_class", "import numpy as np\nT = type(np.dtype)", ["policy"], 5.0, "type() of a class"
    ),
    _runtime(
        "type_of_random_class", "import random\nT = type(random.Random)", ["policy"], 5.0, "type() of a class"
    ),
    _runtime(
        "return_dimension_over_u32",
        "import numpy as np\nret_val = np.zeros((2 ** 32, 0))",
        ["policy"],
        5.0,
        "too long to send",
    ),
    _runtime(
        "host_arg_dimension_over_u32",
        "import numpy as np\nget_obj_pos(np.zeros((2 ** 32, 0)))",
        ["primitive"],
        5.0,
        "too long to send",
    ),
    # empty, so 47 bytes on the wire, but 4e9 rows for the host to copy into the call's event
    _runtime(
        "host_arg_empty_array_of_many_rows",
        "import numpy as np\nget_obj_pos(np.zeros((65535, 65535, 0)))",
        ["primitive"],
        5.0,
        "too long to send",
    ),
    _runtime(
        "return_empty_array_of_many_rows",
        "import numpy as np\nret_val = np.zeros((65535, 65535, 0))",
        ["policy"],
        5.0,
        "too long to send",
    ),
]


def _py(id_, code, expect):
    return Payload(id_, code, ("policy",), 5.0, expect)


# Static check off, Python layer on: proxies and restricted builtins refuse on their own.
PYTHON_LAYER = [
    _py("proxy_np_load", "import numpy as np\nnp.load", "AttributeError"),
    _py("proxy_np_seterrcall", "import numpy as np\nnp.seterrcall", "AttributeError"),
    _py("stringdtype_sort_escape_unchecked", STRINGDTYPE_SORT, "type() of a numpy dtype"),
    _py("proxy_np_save", "import numpy as np\nnp.save", "AttributeError"),
    _py("proxy_np_fromfile", "import numpy as np\nnp.fromfile", "AttributeError"),
    _py("proxy_np_memmap", "import numpy as np\nnp.memmap", "AttributeError"),
    _py("proxy_np_bmat_reads_frames", "import numpy as np\nnp.bmat", "AttributeError"),
    _py("proxy_np_lib", "import numpy as np\nnp.lib", "AttributeError"),
    _py("proxy_np_testing", "import numpy as np\nnp.testing", "AttributeError"),
    _py("proxy_np_ctypeslib", "import numpy as np\nnp.ctypeslib", "AttributeError"),
    _py("proxy_np_random_mtrand", "import numpy as np\nnp.random.mtrand", "AttributeError"),
    _py("proxy_np_private_core", "import numpy as np\nnp._core", "AttributeError"),
    _py("proxy_shapely_lib", "import shapely\nshapely.lib", "AttributeError"),
    _py("proxy_shapely_geometry_base", "import shapely.geometry as g\ng.base", "AttributeError"),
    _py("proxy_random_os", "import random\nrandom._os", "AttributeError"),
    _py("proxy_typing_hints", "import typing\ntyping.get_type_hints", "AttributeError"),
    _py("proxy_operator_attrgetter", "import operator\noperator.attrgetter", "AttributeError"),
    _py("guard_from_os_import", "from os import system", "ImportError"),
    _py("guard_import_unloaded", "import antigravity", "ImportError"),
    _py("guard_relative_import", "from . import x", "ImportError"),
    _py("builtins_open", "open('/etc/passwd')", "NameError"),
    _py("builtins_eval", "eval('1')", "NameError"),
    _py("builtins_getattr", "getattr(1, 'real')", "NameError"),
    _py("builtins_vars", "vars()", "NameError"),
    _py("builtins_type3", "type('X', (), {})", "TypeError"),
    _py("builtins_class", "class X:\n    pass", "NameError"),
    _py("print_file", "print('x', file=None or 1)", "TypeError"),
    _py("host_function_reduce", "get_obj_pos.__reduce_ex__(4)", "cannot be pickled"),
    _py("proxy_np_resize", "import numpy as np\nnp.resize", "AttributeError"),
    _py("type_of_property", "import statistics\nP = type(statistics.Fraction.numerator)", "not available"),
    _py("type_of_function", "def f():\n    pass\nT = type(f)", "not available"),
    _py("proxy_shapely_type_hint_abc", "import shapely.strtree as s\ns.Iterable", "AttributeError"),
    _py("guard_from_functools_cmp_to_key", "from functools import cmp_to_key", "ImportError"),
    _py("array_stand_in_hides_real_class", "import numpy as np\nR = np.ndarray._real", "AttributeError"),
    _py(
        "metaclass_escape_unchecked",
        "T = type(int)\nMeta = T('Meta', (T,), {'__instancecheck__': lambda c, i: True})",
        "type() of a class",
    ),
]

_ESCAPE = (
    "g = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
    ".__init__.__globals__\nB = g['__builtins__']\n"
)


# Payloads aimed at numpy's C-level memory bugs (a use after free mid-sort, arrays over raw
# memory, callbacks numpy runs inside its loops). The Python layer is not the boundary and no
# longer stands in their way: each may run, fail or crash its own worker, and the OS boundary
# keeps all of it inside (test_zz_host_unharmed_and_benign_run_still_works checks the host).
CONTAINED = ("ok", *ERROR_KINDS)
C_LEVEL_IDS = {
    "generator_finalizer",
    "generator_with_exit",
    "abc_register",
    "arr_dumps",
    "shapely_lib",
    "object_array_data_cast",
    "resize_use_after_free",
    "resize_through_base",
    "resize_unbound",
    "resize_by_match",
    "arr_tofile",
    "arr_dump",
    "ndarray_object_buffer",
    "type_of_array_object_buffer",
    "recarray_object_buffer",
    "sort_with_mutating_comparison",
    "sort_with_chainmap_defaultdict_comparison",
    "sort_with_typing_itemsview_comparison",
    "sort_with_errcall_in_comparison",
    "errstate_call",
    "type_of_errstate_call",
    "print_formatter_callback",
    "print_formatter_positional",
    "print_override_repr_in_context",
    "array2string_formatter",
    "stringdtype_class_na_object",
    "stringdtype_sort_escape",
    "maximum_with_defaultdict_dtype",
    "defaultdict_through_statistics",
    "printoptions_func_median_overwrite",
    "ufunc_error_keeps_no_ufunc",
    "coordinate_sequence_over_namedtuple",
    "geometry_sequence_class",
    "ndarray_overlapping_strides",
    "proxy_np_seterrcall",
    "stringdtype_sort_escape_unchecked",
    "proxy_np_resize",
    "guard_from_functools_cmp_to_key",
}
C_LEVEL = [
    dataclasses.replace(p, kinds=CONTAINED, expect="")
    for p in (*STATIC, *RUNTIME, *PYTHON_LAYER)
    if p.id in C_LEVEL_IDS
]
STATIC = [p for p in STATIC if p.id not in C_LEVEL_IDS]
RUNTIME = [p for p in RUNTIME if p.id not in C_LEVEL_IDS]
PYTHON_LAYER = [p for p in PYTHON_LAYER if p.id not in C_LEVEL_IDS]
# numpy's file and build entry points: no longer names the static check knows, left out of the
# numpy proxy instead (an AttributeError or ImportError at run time)
PROXY_REFUSED_IDS = {
    "numpy_ctypeslib",
    "numpy_testing",
    "from_numpy_load",
    "np_load_pickle",
    "np_save",
    "np_savez",
    "np_fromfile",
    "np_memmap",
    "np_loadtxt",
    "np_genfromtxt",
    "np_datasource",
}
STATIC = [
    dataclasses.replace(p, kinds=(*p.kinds, "policy")) if p.id in PROXY_REFUSED_IDS else p for p in STATIC
]


def _os(id_, body, kinds, expect="", timeout_s=5.0):
    return Payload(id_, _ESCAPE + body, tuple(kinds), timeout_s, expect)


OS = [
    _os("os_escape_works", "ret_val = g['getpid']()", ["ok"]),
    _os(
        "read_repo",
        f"ret_val = B['open']({str(REPO / 'pyproject.toml')!r}).read()",
        ["policy"],
        "FileNotFoundError",
    ),
    _os("list_repo", f"ret_val = g['listdir']({str(REPO)!r})", ["policy"], "FileNotFoundError"),
    _os(
        "read_host_tmp_secret",
        f"ret_val = B['open']({str(SECRET)!r}).read()",
        ["policy"],
        "FileNotFoundError",
    ),
    _os("read_root_ssh", "ret_val = g['listdir']('/root/.ssh')", ["policy"], "Error"),
    _os("list_root", "ret_val = g['listdir']('/root')", ["ok", "policy"]),
    _os("list_home", "ret_val = g['listdir']('/home')", ["policy"], "FileNotFoundError"),
    _os("read_etc_passwd", "ret_val = B['open']('/etc/passwd').read()", ["policy"], "FileNotFoundError"),
    _os("write_canary", f"B['open']({str(CANARY / 'pwned.txt')!r}, 'w').write('x')", ["policy"], "Error"),
    _os("delete_canary", f"g['remove']({str(CANARY / 'keep.txt')!r})", ["policy"], "Error"),
    _os("write_usr", "B['open']('/usr/pwned', 'w').write('x')", ["policy"], "Error"),
    _os("write_tmp", "B['open']('/tmp/inside', 'w').write('x')", ["policy"], "PermissionError"),
    _os("mkdir_root", "g['mkdir']('/pwned')", ["policy"], "Error"),
    _os("socket_create", "s = B['__import__']('socket').socket()", ["policy"], "PermissionError"),
    _os(
        "socket_connect",
        "B['__import__']('socket').create_connection(('1.1.1.1', 80), timeout=1)",
        ["policy"],
        "Error",
    ),
    _os("fork_bomb", "while True:\n    g['fork']()", ["policy"], "PermissionError"),
    _os("os_system", f"ret_val = g['system']('touch {CANARY}/system-pwned')", ["ok", "policy"]),
    _os("subprocess_run", "B['__import__']('subprocess').run(['/bin/true'])", ["policy"], "Error"),
    _os("kill_parent", "g['kill'](g['getppid'](), 9)", ["policy"], "PermissionError"),
    _os("kill_init", "g['kill'](1, 9)", ["policy"], "PermissionError"),
    _os("setuid_root", "g['setuid'](0)", ["policy"], "Error"),
    _os("env_secrets", "ret_val = dict(g['environ'])", ["ok"]),
    _os("proc_environ_of_pid1", "ret_val = B['open']('/proc/1/environ').read()", ["ok", "policy"]),
    _os("ctypes_fork", "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).fork()", ["ok", "policy"]),
    _os(
        "unshare_userns", "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).unshare(0x10000000)", ["ok"]
    ),
    _os("memory_bomb_escaped", "x = B['bytearray'](10 ** 10)", ["memory"]),
    # System V IPC: its shared memory is not counted by RLIMIT_AS (and outlives the worker
    # without an IPC namespace); prlimit64 on another pid could shrink the next warm worker
    _os(
        "sysv_shmget",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).shmget(0, 1 << 20, 0o1600)",
        ["ok"],
    ),
    _os("sysv_semget", "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).semget(0, 1, 0o1600)", ["ok"]),
    _os(
        "prlimit_other_pid",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall(302, 1, 9, None, "
        "c.create_string_buffer(16))",
        ["ok"],
    ),
    _os(
        "fchmodat2_tmp",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall(452, -100, b'/tmp', 0o777, 0)",
        ["ok"],
    ),
    _os(
        "setxattr_tmp",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).setxattr(b'/tmp', b'user.x', b'1', 1, 0)",
        ["ok"],
    ),
    _os("prlimit_self_still_works", "r = B['__import__']('resource')\nret_val = r.getrlimit(9)[0]", ["ok"]),
    # the filter is an allowlist: calls a worker never makes are refused, including future ones
    _os(
        "pipe2_refused",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall(293, c.create_string_buffer(8), 0)",
        ["ok"],
    ),
    _os(
        "prctl_refused",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).prctl(15, b'x', 0, 0, 0)",
        ["ok"],
    ),
    _os(
        "memfd_create_refused",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall(319, b'x', 0)",
        ["ok"],
    ),
    _os(
        "ioctl_other_than_tcgets_refused",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).ioctl(3, 0x5421, c.create_string_buffer(4))",
        ["ok"],
    ),
    _os(
        "future_syscall_refused",
        "c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall(470, 0, 0)",
        ["ok"],
    ),
    # the service's own secrets and data, from outside the worker
    _os(
        "proc_environ_of_parent",
        "ret_val = B['open'](f\"/proc/{g['getppid']()}/environ\").read()",
        ["ok", "policy"],
    ),
    _os(
        "read_trace_database",
        f"ret_val = B['open']({str(REPO / 'var' / 'capstan.db')!r}, 'rb').read(64)",
        ["policy"],
        "Error",
    ),
    _os("read_etc_shadow", "ret_val = B['open']('/etc/shadow').read()", ["policy"], "Error"),
    _os(
        "connect_to_service_port",
        "B['__import__']('socket').create_connection(('127.0.0.1', 8000), timeout=1)",
        ["policy"],
        "Error",
    ),
    _os(
        "udp_sendto",
        "s = B['__import__']('socket').socket(2, 2)\ns.sendto(b'x', ('127.0.0.1', 53))",
        ["policy"],
        "Error",
    ),
    _os(
        "unix_socket_to_docker",
        "s = B['__import__']('socket').socket(1, 1)\ns.connect('/var/run/docker.sock')",
        ["policy"],
        "Error",
    ),
    # exhaustion: each ends in a clear error and a healthy host
    _os(
        "exhaust_file_descriptors",
        "fs = [B['open']('/proc/self/status') for _ in range(100000)]",
        ["policy"],
        "Error",
    ),
    _os(
        "exhaust_threads",
        "t = B['__import__']('threading')\ns = B['__import__']('time').sleep\n"
        "for _ in range(10000):\n    t.Thread(target=s, args=(30,), daemon=True).start()",
        ["policy"],
        "thread",
    ),
    _os(
        "exhaust_disk",
        "f = B['open']('/tmp/fill', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20))",
        ["policy"],
        "Error",
    ),
    # process control and kernel interfaces, one raw system call each: all refused (-1)
    *(
        _os(name, f"c = B['__import__']('ctypes')\nret_val = c.CDLL(None).syscall({args})", ["ok"])
        for name, args in (
            ("ptrace_attach_parent", "101, 16, c.CDLL(None).getppid(), 0, 0"),
            ("process_vm_readv_parent", "310, c.CDLL(None).getppid(), 0, 0, 0, 0, 0"),
            ("execve_raw", "59, b'/bin/sh', 0, 0"),
            ("execveat_raw", "322, -100, b'/bin/sh', 0, 0, 0"),
            ("clone3_new_userns", "435, c.create_string_buffer(88), 88"),
            ("setns_raw", "308, 0, 0"),
            ("mount_tmpfs", "165, b'none', b'/tmp', b'tmpfs', 0, 0"),
            ("chroot_raw", "161, b'/tmp'"),
            ("keyctl_raw", "250, 0, 0, 0, 0, 0"),
            ("add_key_raw", "248, b'user', b'x', b'y', 1, -3"),
            ("bpf_raw", "321, 0, c.create_string_buffer(128), 128"),
            ("io_uring_setup_raw", "425, 8, c.create_string_buffer(120)"),
            ("perf_event_open_raw", "298, c.create_string_buffer(128), 0, -1, -1, 0"),
            ("userfaultfd_raw", "323, 0"),
            ("tgkill_parent", "234, c.CDLL(None).getppid(), c.CDLL(None).getppid(), 9"),
            ("kcmp_raw", "312, 1, 1, 0, 0, 0"),
            ("open_by_handle_at_raw", "304, -100, c.create_string_buffer(128), 0"),
            ("fanotify_init_raw", "300, 0, 0"),
            ("init_module_raw", "175, 0, 0, b''"),
            ("socketpair_raw", "53, 1, 1, 0, c.create_string_buffer(8)"),
        )
    ),
]
REFUSED_SYSCALL_RESULTS = {
    "sysv_shmget",
    "sysv_semget",
    "prlimit_other_pid",
    "fchmodat2_tmp",
    "setxattr_tmp",
    "pipe2_refused",
    "prctl_refused",
    "memfd_create_refused",
    "ioctl_other_than_tcgets_refused",
    "future_syscall_refused",
    "ptrace_attach_parent",
    "process_vm_readv_parent",
    "execve_raw",
    "execveat_raw",
    "clone3_new_userns",
    "setns_raw",
    "mount_tmpfs",
    "chroot_raw",
    "keyctl_raw",
    "add_key_raw",
    "bpf_raw",
    "io_uring_setup_raw",
    "perf_event_open_raw",
    "userfaultfd_raw",
    "tgkill_parent",
    "kcmp_raw",
    "open_by_handle_at_raw",
    "fanotify_init_raw",
    "init_module_raw",
    "socketpair_raw",
}


# Without bubblewrap the worker sees the host file system (as uid 65534, writes refused by
# seccomp): world-readable files stay readable, so these hold only under bwrap.


def _host_functions():
    def get_obj_pos(name):
        if isinstance(name, float) and not math.isfinite(name):
            raise InvalidArgumentError("name must be a string, got a non-finite float")
        if not isinstance(name, str):
            raise InvalidArgumentError(f"name must be a string, got {type(name).__name__}")
        return np.array([0.1, 0.2])

    return {"get_obj_pos": get_obj_pos}


def _snapshot() -> dict:
    paths = [*CANARY.iterdir(), *(REPO / "sandbox").rglob("*.py"), REPO / "pyproject.toml"]
    paths += [p for p in (Path.home() / ".bashrc", Path.home() / ".profile") if p.exists()]
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}


BEFORE = _snapshot()


def _check(res, payload: Payload) -> None:
    assert res.duration_s < payload.timeout_s + 10.0  # budget + waiting for a warm worker
    kind = "ok" if res.error is None else res.error.kind
    assert kind in ERROR_KINDS or kind == "ok"
    assert kind in payload.kinds, f"{payload.id}: got {res.error}"
    if payload.expect:
        text = (res.error.message if res.error else "") + res.stdout
        assert payload.expect in text, f"{payload.id}: {res.error} / {res.stdout[:200]}"


@pytest.mark.parametrize("payload", STATIC, ids=[p.id for p in STATIC])
def test_static_payload_refused(sb, payload):
    res = sb.run(payload.code, _host_functions(), timeout_s=payload.timeout_s)
    _check(res, payload)
    assert res.error.line is None or res.error.line >= 1


def _batchable(payload: Payload) -> bool:
    """Payloads that just raise can share one worker (one function each); the rest run alone."""
    return payload.kinds in (("policy",), ("primitive",)) and "ret_val" not in payload.code


def _batch_program(payloads: list[Payload], prefix: str = "") -> str:
    lines = [prefix, "results = {}"]
    for i, p in enumerate(payloads):
        lines.append(f"def case_{i}():")
        lines += ["    " + line for line in p.code.removeprefix(prefix).splitlines()]
        lines += [
            "try:",
            f"    case_{i}()",
            f"    results[{p.id!r}] = ['ok', '']",
            "except BaseException as e:",
            "    kind = 'primitive' if isinstance(e, PrimitiveError) else 'policy'",
            f"    results[{p.id!r}] = [kind, repr(type(e)) + ': ' + str(e)[:500]]",
        ]
    return "\n".join(lines)


_BATCHES: dict[str, dict] = {}


def _batched(box, group: str, payloads: list[Payload], prefix: str = "") -> dict:
    group = f"{group}/{box.isolation['mode']}"
    if group not in _BATCHES:
        members = [p for p in payloads if _batchable(p)]
        res = box.run(
            _batch_program(members, prefix), _host_functions(), timeout_s=30, return_names=("results",)
        )
        assert res.ok, res.error
        _BATCHES[group] = res.values["results"]
    return _BATCHES[group]


def _check_batched(results: dict, payload: Payload) -> None:
    kind, text = results[payload.id]
    assert kind in payload.kinds, f"{payload.id}: {kind} {text}"
    assert payload.expect in text, f"{payload.id}: {text}"


@pytest.mark.parametrize("payload", RUNTIME, ids=[p.id for p in RUNTIME])
def test_runtime_payload_contained(sb, payload):
    if _batchable(payload):
        _check_batched(_batched(sb, "runtime", RUNTIME), payload)
        return
    res = sb.run(payload.code, _host_functions(), timeout_s=payload.timeout_s)
    _check(res, payload)


@pytest.mark.parametrize("payload", C_LEVEL, ids=[p.id for p in C_LEVEL])
def test_c_level_payload_stays_in_its_worker(sb, payload):
    res = sb.run(payload.code, _host_functions(), timeout_s=payload.timeout_s)
    _check(res, payload)
    after = sb.run("ret_val = 1 + 1", timeout_s=10)  # the next run gets a fresh, working worker
    assert after.ok and after.values["ret_val"] == 2, after.error


@pytest.mark.parametrize("payload", PYTHON_LAYER, ids=[p.id for p in PYTHON_LAYER])
def test_python_layer_refuses_without_static_check(unsafe_sb, payload):
    _check_batched(_batched(unsafe_sb, "python", PYTHON_LAYER), payload)


def test_loaded_module_import_yields_nothing_usable(unsafe_sb):
    res = unsafe_sb.run("import sys\nimport os\nret_val = (sys, os)", timeout_s=5)
    assert res.ok, res.error
    assert res.values["ret_val"] == (None, None)


# Under bubblewrap these paths do not exist in the worker's mount namespace; under Landlock they
# exist and reading them is refused.
HIDDEN_OR_REFUSED = {"read_repo", "list_repo", "read_host_tmp_secret", "list_home", "read_etc_passwd"}


@pytest.mark.parametrize("payload", OS, ids=[p.id for p in OS])
def test_os_layer_contains_unchecked_payload(os_sb, payload, monkeypatch):
    """Every OS-level payload under each boundary; none is skipped under either."""
    unsafe_sb = os_sb
    if os_sb.isolation["mode"] == "landlock" and payload.id in HIDDEN_OR_REFUSED:
        payload = dataclasses.replace(payload, expect="PermissionError")
    if _batchable(payload):
        _check_batched(_batched(unsafe_sb, "os", OS, _ESCAPE), payload)
        return
    monkeypatch.setenv("OPENAI_API_KEY", "sk-redteam-fake")
    res = unsafe_sb.run(payload.code, _host_functions(), timeout_s=payload.timeout_s)
    _check(res, payload)
    value = res.values.get("ret_val")
    if payload.id == "env_secrets":
        assert "OPENAI_API_KEY" not in value and not any("KEY" in k for k in value)
    if payload.id in ("proc_environ_of_pid1", "proc_environ_of_parent") and value is not None:
        assert "sk-redteam-fake" not in value and "KEY" not in value
    if payload.id == "os_system" and value is not None:
        assert value != 0
    if payload.id == "ctypes_fork" and value is not None:
        assert value == -1
    if payload.id == "list_root" and value is not None:
        assert set(value) <= {".pyenv"}  # only the interpreter prefix is bound, nothing else of /root
    if payload.id == "unshare_userns" or payload.id in REFUSED_SYSCALL_RESULTS:
        assert value == -1, f"{payload.id}: the syscall succeeded ({value})"
    if payload.id == "prlimit_self_still_works":
        assert value > 0


def test_worker_that_never_reads_cannot_hold_the_host(unsafe_sb):
    """A program that floods host calls and never reads the replies fills the channel: the
    host's reply must give up at the run's deadline, and the run end as a timeout."""
    flood = (
        "r = get_obj_pos._call.__self__\n"
        "frame = r.protocol.encode(('call', 'get_obj_pos', ('red block',), {}))\n"
        "while True:\n    r.chan.send_raw(frame)"
    )
    res = unsafe_sb.run(flood, _host_functions(), timeout_s=2.0)
    assert res.error is not None and res.error.kind == "timeout", res.error
    assert res.duration_s < 2.0 + 5.0


FORGED_READS = {
    # an effect reported as if it were a memoised read: the host must not make the call
    "effect_as_read": "[('call', 'place', ('red block',), {})]",
    "not_a_tuple": "['place']",
    "not_a_call": "[('done', {})]",
    "kwargs_not_a_dict": "[('call', 'get_obj_pos', ('r',), [])]",
    "too_many": "[('call', 'get_obj_pos', ('r',), {})] * 5000",
}


@pytest.mark.parametrize("entries", FORGED_READS.values(), ids=FORGED_READS)
def test_forged_read_reports_are_refused(unsafe_sb, entries):
    """An escaped worker's "reads" report may only name the run's pure functions, well formed."""
    placed = []
    hosts = {**_host_functions(), "place": placed.append}
    forge = (
        "r = get_obj_pos._call.__self__\n"
        f"r.chan.send_framed(r.protocol.frame(r.protocol.encode(('reads', {entries}))))\n"
        "get_obj_pos('red block')\n"
    )
    res = unsafe_sb.run(forge, hosts, timeout_s=10, pure=["get_obj_pos"])
    assert res.error is not None and res.error.kind == "crash", res.error
    assert "misbehaved" in res.error.message
    assert placed == []


def test_suite_is_big_enough():
    assert len(STATIC) + len(RUNTIME) + len(PYTHON_LAYER) + len(C_LEVEL) + len(OS) >= 60


def test_zz_host_unharmed_and_benign_run_still_works(sb):
    res = sb.run(
        "import numpy as np\nret_val = float(np.linalg.norm(get_obj_pos('red block')))", _host_functions()
    )
    assert res.ok, res.error
    assert res.values["ret_val"] == pytest.approx(math.hypot(0.1, 0.2))
    assert _snapshot() == BEFORE
    assert sorted(p.name for p in CANARY.iterdir()) == ["keep.txt", "secret.txt"]
    assert not Path("/pwned").exists() and not Path("/usr/pwned").exists()


def test_flood_of_read_reports_cannot_hold_the_host(unsafe_sb):
    """Nothing goes back for a "reads" message, so only the host's own clock can stop an
    escaped worker that floods them: it is checked between reports and between entries."""
    import time as _time

    def slow_read():
        _time.sleep(0.002)

    flood = (
        "r = read._call.__self__\n"
        "one = r.protocol.frame(r.protocol.encode(('reads', [('call', 'read', (), {})] * 256)))\n"
        "while True:\n    r.chan.send_framed(one * 8)"
    )
    res = unsafe_sb.run(flood, {"read": slow_read}, timeout_s=1.0, pure=["read"])
    assert res.error is not None and res.error.kind == "timeout", res.error
    assert res.duration_s < 1.0 + 0.5
