"""JSON-ready copies of values (numpy scalars and arrays, tuples, sets, exceptions, dataclasses).

`plain` caps what it copies: events of policy calls, whose arguments and results the policy
code chooses. Each level is capped, and so is the whole copy (a list of 64 lists of 64 strings of
2,000 characters would otherwise make one call's event megabytes). `jsonable` copies whole: traces
(scene states, model prompts and replies). One conversion serves both; only the limits differ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

MAX_EVENT_ITEMS = 64
MAX_EVENT_TEXT = 2000
MAX_OTHER_TEXT = 500  # the repr of a value of any other type
# for the whole copy of one value: characters of text, and entries of lists, dicts and arrays
MAX_EVENT_TOTAL_TEXT = 8000
MAX_EVENT_TOTAL_ITEMS = 1024
MAX_WHOLE_ARRAY_ROWS = 100_000  # rows of an array copied whole (traces hold scenes, not images)


class _Limits(NamedTuple):
    items: int | None  # list, dict and array entries kept
    text: int | None  # characters of a string kept
    depth: int  # nesting copied; deeper containers become "<type>"


_CAPPED = _Limits(MAX_EVENT_ITEMS, MAX_EVENT_TEXT, 4)
_WHOLE = _Limits(None, None, 12)


class _Budget:
    """What one capped copy may still spend on text and on entries, across all its levels."""

    def __init__(self) -> None:
        self.text = MAX_EVENT_TOTAL_TEXT
        self.items = MAX_EVENT_TOTAL_ITEMS

    def cut(self, text: str, limit: int) -> str:
        kept = _cut(text, min(limit, self.text))
        self.text = max(0, self.text - len(kept))
        return kept

    def take(self, n: int, limit: int) -> int:
        """How many of `n` entries to copy."""
        granted = min(n, limit, self.items)
        self.items -= granted
        return granted


def plain(value: object) -> object:
    """A JSON-ready, size-capped copy of a policy call's argument or result, for its event."""
    return _copy(value, _CAPPED, 0, _Budget())


def jsonable(value: object) -> object:
    """A JSON-ready copy of trace data, whole (nesting deeper than 12 levels is cut)."""
    return _copy(value, _WHOLE, 0, None)


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def _copy(value: object, lim: _Limits, depth: int, budget: _Budget | None) -> object:
    if isinstance(value, np.ndarray):
        # tolist() builds a list per row: an empty array of shape (65535, 65535, 0) is 4e9 of them
        rows = math.prod(value.shape[:-1])
        if rows > (lim.items or MAX_WHOLE_ARRAY_ROWS) or (lim.items is not None and value.size > lim.items):
            return f"<array shape={value.shape}>"
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _text(value, lim.text, budget)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": _text(str(value), lim.text, budget)}
    if depth >= lim.depth:
        return f"<{type(value).__name__}>"
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return _copy_container(value, lim, depth, budget)
    for attr in ("to_dict", "_asdict"):
        if hasattr(value, attr):
            return _copy(getattr(value, attr)(), lim, depth + 1, budget)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _copy(dataclasses.asdict(value), lim, depth + 1, budget)
    return _text(repr(value)[:MAX_OTHER_TEXT], MAX_OTHER_TEXT, budget)


def _copy_container(
    value: dict | list | tuple | set | frozenset, lim: _Limits, depth: int, budget: _Budget | None
) -> object:
    items = list(value.items()) if isinstance(value, dict) else list(value)
    keep = _keep(len(items), lim.items, budget)
    more = f"<{len(items) - keep} more>" if keep < len(items) else None
    if isinstance(value, dict):
        key_text = None if lim.text is None else 100
        copied = {_text(str(k), key_text, budget): _copy(v, lim, depth + 1, budget) for k, v in items[:keep]}
        return copied if more is None else {**copied, "…": more}
    kept = [_copy(v, lim, depth + 1, budget) for v in items[:keep]]
    return kept if more is None else [*kept, more]


def _text(text: str, limit: int | None, budget: _Budget | None) -> str:
    if budget is None or limit is None:
        return _cut(text, limit)
    return budget.cut(text, limit)


def _keep(n: int, limit: int | None, budget: _Budget | None) -> int:
    if limit is None:
        return n
    return min(n, limit) if budget is None else budget.take(n, limit)
