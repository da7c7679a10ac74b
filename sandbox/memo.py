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

from sandbox import protocol

MAX_ENTRIES = 4096  # distinct calls remembered between two calls of other host functions
MAX_REPLY_BYTES = 64 << 10  # bigger answers are fetched every time
_SCALARS = (str, int, float, bool, type(None))


class ReadMemo:
    def __init__(self, pure=()):
        self.pure = frozenset(pure)
        self._answers: dict[object, tuple[tuple, bytes]] = {}
        self._report: list[tuple] = []  # calls answered here since the last report
        self._report_bytes = 0

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
        if type(key) is bytes:  # arguments the program may still change: report a private copy
            self._report.append(protocol.decode(key))
            self._report_bytes += len(key)
        else:
            self._report.append(("call", name, args, kwargs))
            self._report_bytes += sum(map(len, key))
        return _fresh(*known)

    def remember(self, key, reply_bytes: bytes, reply: tuple) -> tuple:
        """Keep the host's reply to a call; returns what to hand out (not the kept objects)."""
        if len(self._answers) >= MAX_ENTRIES or len(reply_bytes) > MAX_REPLY_BYTES:
            return reply
        known = self._answers[key] = (reply, bytes(reply_bytes))
        return _fresh(*known)

    def forget(self) -> None:
        """Another host function is being called: it may change what the reads would answer."""
        self._answers.clear()

    def report_due(self) -> bool:
        return (
            len(self._report) >= protocol.MAX_READS_PER_REPORT
            or self._report_bytes >= protocol.MAX_READS_REPORT_BYTES
        )

    def take_report(self) -> bytes:
        """The framed "reads" message of the calls answered here since the last one, or b""."""
        if not self._report:
            return b""
        framed = protocol.frame(protocol.encode(("reads", self._report)))
        self._report, self._report_bytes = [], 0
        return framed


def _fresh(reply: tuple, reply_bytes: bytes) -> tuple:
    if reply[0] != "ret" or type(reply[1]) in _SCALARS:
        return reply  # an error's strings, or an immutable value
    if type(reply[1]) is np.ndarray:
        return ("ret", reply[1].copy())
    return protocol.decode(reply_bytes)
