"""ReadMemo, the worker's memory of pure answers: keys, freshness, reports (in process)."""

from __future__ import annotations

import numpy as np

from capstan.sandbox import protocol
from capstan.sandbox.memo import MAX_REPLY_BYTES, ReadMemo


def _remember(memo, name, args, kwargs, value):
    reply = ("ret", value)
    key = memo.simple_key(name, args, kwargs) or protocol.encode(("call", name, args, kwargs))
    return key, memo.remember(key, protocol.encode(reply), reply)


def test_equal_arguments_of_other_types_never_share_an_answer():
    memo = ReadMemo(["f"])
    keys = [_remember(memo, "f", (arg,), {}, str(arg))[0] for arg in (1, 1.0, True, "1")]
    assert len(set(keys)) == 4
    assert [memo.recall(k, "f", (a,), {}) for k, a in zip(keys, (1, 1.0, True, "1"), strict=False)] == [
        ("ret", "1"),
        ("ret", "1.0"),
        ("ret", "True"),
        ("ret", "1"),
    ]


def test_answers_are_handed_out_fresh():
    memo = ReadMemo(["pos", "state"])
    key, first = _remember(memo, "pos", ("red block",), {}, np.array([0.1, 0.2]))
    first[1][0] = 99.0
    again = memo.recall(key, "pos", ("red block",), {})
    assert again[1].tolist() == [0.1, 0.2] and again[1] is not first[1]
    key, first = _remember(memo, "state", (), {}, {"holding": None, "width": [0.04]})
    first[1]["width"].append(1)
    assert memo.recall(key, "state", (), {})[1] == {"holding": None, "width": [0.04]}


def test_report_holds_the_arguments_as_they_were_called():
    memo = ReadMemo(["name_of"])
    xy = [0.1, 0.5]
    key, _ = _remember(memo, "name_of", (xy,), {}, "top left corner")
    xy[0] = 7.0  # the program changes its list after the call
    assert memo.recall(key, "name_of", (xy,), {}) == ("ret", "top left corner")
    assert protocol.decode(memo.take_report()[4:]) == ("reads", [("call", "name_of", ([0.1, 0.5],), {})])
    assert memo.take_report() == b""


def test_forget_and_limits():
    memo = ReadMemo(["f"])
    key, _ = _remember(memo, "f", ("a",), {}, 1.0)
    memo.forget()
    assert memo.recall(key, "f", ("a",), {}) is None
    big = np.zeros(MAX_REPLY_BYTES // 8 + 1)
    key, _ = _remember(memo, "f", ("big",), {}, big)
    assert memo.recall(key, "f", ("big",), {}) is None  # fetched every time
    key, _ = _remember(memo, "f", ("a",), {}, 1.0)
    for _ in range(protocol.MAX_READS_PER_REPORT - 1):
        memo.recall(key, "f", ("a",), {})
    assert not memo.report_due()
    memo.recall(key, "f", ("a",), {})
    assert memo.report_due()


def test_refusals_and_oversized_calls_are_not_remembered():
    memo = ReadMemo(["f"], max_report_bytes=4096)
    refusal = ("exc", "builtin", "TypeError", "f(): too many positional arguments")
    memo.remember(("f", "a"), protocol.encode(refusal), refusal)
    assert memo.recall(("f", "a"), "f", ("a",), {}) is None
    hidden = ("exc", "primitive", "NotVisibleError", "hidden")
    memo.remember(("f", "b"), protocol.encode(hidden), hidden)
    assert memo.recall(("f", "b"), "f", ("b",), {}) == hidden
    long = "x" * 1000  # its report entry could take more than half of the 4 KB bound
    memo.remember(("f", long), protocol.encode(("ret", 1)), ("ret", 1))
    assert memo.recall(("f", long), "f", (long,), {}) is None


def test_a_report_never_outgrows_its_bound():
    memo = ReadMemo(["f"], max_report_bytes=4096)
    arg = "\U0001f916" * 100  # 4 bytes a character in UTF-8
    memo.remember(("f", arg), protocol.encode(("ret", 1)), ("ret", 1))
    sizes = []
    for _ in range(100):
        memo.recall(("f", arg), "f", (arg,), {})
        if memo.report_due():
            sizes.append(len(memo.take_report()))
    assert sizes and max(sizes) <= 4096
