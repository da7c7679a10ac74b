"""JSON-ready copies: `plain` (capped, for policy-call events) and `jsonable` (whole, for traces)."""

from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

import numpy as np

from capstan.primitives.jsondata import MAX_EVENT_ITEMS, MAX_EVENT_TEXT, jsonable, plain


@dataclasses.dataclass
class Pose:
    xy: tuple
    yaw: np.float32


class Pair(NamedTuple):
    a: int
    b: float


def test_both_convert_numpy_tuples_sets_exceptions_and_dataclasses():
    value = {
        1: np.array([1.5, 2.5]),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "bad": [float("nan"), float("inf")],
        "pose": Pose((0.1, 0.2), np.float32(0.5)),
        "pair": Pair(1, 2.0),
        "tags": {"x"},
        "err": ValueError("no such block"),
        "other": b"\x00",
    }
    expected = {
        "1": [1.5, 2.5],
        "n": 3,
        "ok": True,
        "bad": ["nan", "inf"],
        "pose": {"xy": [0.1, 0.2], "yaw": 0.5},
        "pair": [1, 2.0],
        "tags": ["x"],
        "err": {"type": "ValueError", "message": "no such block"},
        "other": "b'\\x00'",
    }
    for convert in (plain, jsonable):
        out = convert(value)
        assert out == expected
        json.dumps(out, allow_nan=False)


def test_plain_caps_sizes_and_jsonable_keeps_them_whole():
    big = {
        "text": "x" * (MAX_EVENT_TEXT + 10),
        "items": list(range(MAX_EVENT_ITEMS + 5)),
        "image": np.zeros((10, 10)),
        "deep": [[[[["bottom"]]]]],
    }
    capped = plain(big)
    assert capped["text"] == "x" * MAX_EVENT_TEXT + "…"
    assert capped["items"] == [*range(MAX_EVENT_ITEMS), "<5 more>"]
    assert capped["image"] == "<array shape=(10, 10)>"
    assert capped["deep"] == [[["<list>"]]]  # four levels of nesting, the dict being the first
    whole = jsonable(big)
    assert whole["text"] == big["text"] and whole["items"] == big["items"]
    assert whole["image"] == [[0.0] * 10] * 10 and whole["deep"] == [[[[["bottom"]]]]]


def test_plain_caps_the_whole_copy_not_only_each_level():
    """64 lists of 64 strings of 2,000 characters pass every per-level cap: 8 MB for one event."""
    value = [["\U0001f600" * MAX_EVENT_TEXT] * MAX_EVENT_ITEMS] * MAX_EVENT_ITEMS
    capped = plain(value)
    assert len(json.dumps(capped, ensure_ascii=False)) < 20_000
    assert capped[0][:4] == ["\U0001f600" * MAX_EVENT_TEXT] * 4  # the first 8,000 characters whole
    assert capped[0][4] == "…"  # then the text budget is spent
    assert capped[-1] == [f"<{MAX_EVENT_ITEMS} more>"]  # and later the entries' budget
    assert plain({"k": "v" * 10, "n": [1, 2]}) == {"k": "v" * 10, "n": [1, 2]}  # small values whole


def test_an_empty_array_of_many_rows_is_not_copied_row_by_row():
    """tolist() would build a list per row: 4e9 for this empty array, in the service's memory."""
    huge = np.zeros((65535, 65535, 0))
    assert plain(huge) == "<array shape=(65535, 65535, 0)>"
    assert jsonable(huge) == "<array shape=(65535, 65535, 0)>"
    assert plain(np.zeros((3, 0))) == [[], [], []] and jsonable(np.zeros((2, 2))) == [[0.0, 0.0], [0.0, 0.0]]
