"""JSON-ready copies of values (numpy scalars and arrays, tuples, sets, exceptions, dataclasses).

`plain` caps what it copies: events of policy calls, whose arguments and results the policy
code chooses. `jsonable` copies whole: traces (scene states, model prompts and replies). One
conversion serves both; only the limits differ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

MAX_EVENT_ITEMS = 64
MAX_EVENT_TEXT = 2000
MAX_OTHER_TEXT = 500  # the repr of a value of any other type


class _Limits(NamedTuple):
    items: int | None  # list, dict and array entries kept
    text: int | None  # characters of a string kept
    depth: int  # nesting copied; deeper containers become "<type>"


_CAPPED = _Limits(MAX_EVENT_ITEMS, MAX_EVENT_TEXT, 4)
_WHOLE = _Limits(None, None, 12)


def plain(value: object) -> object:
    """A JSON-ready, size-capped copy of a policy call's argument or result, for its event."""
    return _copy(value, _CAPPED, 0)


def jsonable(value: object) -> object:
    """A JSON-ready copy of trace data, whole (nesting deeper than 12 levels is cut)."""
    return _copy(value, _WHOLE, 0)


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def _copy(value: object, lim: _Limits, depth: int) -> object:
    if isinstance(value, np.ndarray):
        if lim.items is not None and value.size > lim.items:
            return f"<array shape={value.shape}>"
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _cut(value, lim.text)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": _cut(str(value), lim.text)}
    if depth >= lim.depth:
        return f"<{type(value).__name__}>"
    if isinstance(value, dict):
        items = list(value.items())[: lim.items]
        key_text = None if lim.text is None else 100
        return {_cut(str(k), key_text): _copy(v, lim, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple, set, frozenset)):
        return _copy_items(list(value), lim, depth)
    for attr in ("to_dict", "_asdict"):
        if hasattr(value, attr):
            return _copy(getattr(value, attr)(), lim, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _copy(dataclasses.asdict(value), lim, depth + 1)
    return repr(value)[:MAX_OTHER_TEXT]


def _copy_items(items: list, lim: _Limits, depth: int) -> list:
    kept = [_copy(v, lim, depth + 1) for v in items[: lim.items]]
    if lim.items is not None and len(items) > lim.items:
        kept.append(f"<{len(items) - lim.items} more>")
    return kept
