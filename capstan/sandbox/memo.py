"""The worker's memory of pure host-function answers (see `Sandbox.run(pure=...)`).

Between two calls of other host functions a pure function's answer depends only on its
arguments, so the worker answers a repeated call from here and queues it for the host, which
makes the call too (checks, trace) when the report arrives ahead of the worker's next message.

Keys: `(name, *args)` when every argument is exactly a `str` (an object name: the common
read), which costs no encoding; otherwise the call's encoded bytes, so arguments that are
equal but of another type (1, 1.0, True) never share an answer. Answers are handed out fresh
(the program may change what it gets): scalars as they are, arrays copied, anything else
decoded again from the reply's bytes.
"""

from __future__ import annotations

import numpy as np

from capstan.sandbox import protocol

MAX_ENTRIES = 4096  # distinct calls remembered between two calls of other host functions
MAX_REPLY_BYTES = 64 << 10  # bigger answers are fetched every time
_SCALARS = (str, int, float, bool, type(None))


class ReadMemo:
    """`max_report_bytes` bounds one encoded "reads" message (the host refuses bigger frames):
    a call whose report entry could take more than half of it is never answered from here,
    and a report is due once it holds half, so it never grows past the bound."""

    def __init__(self, pure=(), max_report_bytes: int = protocol.MAX_READS_REPORT_BYTES):
        self.pure = frozenset(pure)
        self.max_report_bytes = max_report_bytes
        self._answers: dict[object, tuple[tuple, bytes, int]] = {}  # key -> reply, its bytes, entry size
        self._report: list[tuple] = []  # calls answered here since the last report
        self._report_bytes = 0  # an upper bound of their encoded size

    @staticmethod
    def simple_key(name: str, args: tuple, kwargs: dict) -> tuple | None:
        if kwargs or any(type(a) is not str for a in args):
            return None
        return (name, *args)

    def recall(self, key, name: str, args: tuple, kwargs: dict) -> tuple | None:
        """The reply to a call seen before (fresh), queued for the report; None if unknown."""
        known = self._answers.get(key)
        if known is None:
            return None
        reply, reply_bytes, entry_bytes = known
        if type(key) is bytes:  # arguments the program may still change: report a private copy
            self._report.append(protocol.decode_tuple(key))
        else:
            self._report.append(("call", name, args, kwargs))
        self._report_bytes += entry_bytes
        return _fresh(reply, reply_bytes)

    def remember(self, key, reply_bytes: bytes, reply: tuple) -> tuple:
        """Keep the host's answer to a call (a value or a primitive error, not a refusal of the
        call itself); returns what to hand out (never the kept objects)."""
        entry_bytes = _entry_bytes(key)
        if (
            len(self._answers) >= MAX_ENTRIES
            or len(reply_bytes) > MAX_REPLY_BYTES
            or entry_bytes > self.max_report_bytes // 2
            or not (reply[0] == "ret" or reply[1] == "primitive")
        ):
            return reply
        known = self._answers[key] = (reply, bytes(reply_bytes), entry_bytes)
        return _fresh(known[0], known[1])

    def forget(self) -> None:
        """Another host function is being called: it may change what the reads would answer."""
        self._answers.clear()

    def report_due(self) -> bool:
        return (
            len(self._report) >= protocol.MAX_READS_PER_REPORT
            or self._report_bytes >= self.max_report_bytes // 2
        )

    def take_report(self) -> bytes:
        """The framed "reads" message of the calls answered here since the last one, or b""."""
        if not self._report:
            return b""
        report, self._report, self._report_bytes = self._report, [], 0
        return protocol.frame(protocol.encode(("reads", report), self.max_report_bytes))


def _entry_bytes(key) -> int:
    """An upper bound of a call's encoded size in a report (UTF-8 takes at most 4 bytes a
    character; tags, lengths and the tuple around it are well under the constants)."""
    if type(key) is bytes:
        return len(key) + 16
    return 64 + sum(4 * len(part) + 16 for part in key)


def _fresh(reply: tuple, reply_bytes: bytes) -> tuple:
    """A reply the program may change without changing the kept one."""
    if reply[0] != "ret" or type(reply[1]) in _SCALARS:
        return reply  # an error's strings, or an immutable value
    if type(reply[1]) is np.ndarray:
        return ("ret", reply[1].copy())
    return protocol.decode_tuple(reply_bytes)
