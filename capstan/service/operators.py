"""Operators: the people who may approve or reject a program before it moves a robot, and lift a
robot's watchdog stop or clear its error state (CAPSTAN_OPERATORS).

With the file, such an act needs the operator's own token (header `X-Operator-Token`), and the trace
and the log name the operator the token belongs to. The file is JSON, `{"name": "sha256:<hex>"}`:
only digests are stored, so reading it does not reveal a token. `capstan operators add NAME` writes
one and prints its token once; `remove NAME` revokes it. The service re-reads the file when it
changes, so a new or revoked token counts at once. Without the file, approvals are signed with a
stated name only, and the robot actions are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from capstan.service.approvals import RESERVED_BY

log = logging.getLogger("capstan.operators")
RobotAction = Literal["clear-watchdog", "recover"]  # what an operator may ask of a robot between runs
_PREFIX = "sha256:"


class OperatorsError(ValueError):
    """The operators file is missing, malformed, empty, or names a reserved or unusable operator."""


def digest(token: str) -> str:
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


def check_signature(name: str) -> str:
    """A name someone may sign with: 1-100 printable characters, not one the service signs with."""
    if not (1 <= len(name) <= 100) or name != name.strip() or not name.isprintable():
        raise OperatorsError(f"{name!r} is not a usable name (1-100 printable characters)")
    if name.lower() in RESERVED_BY:
        raise OperatorsError(f"{name!r} is reserved for the service's own decisions")
    return name


def _is_digest(value: object) -> bool:
    hexdigits = value[len(_PREFIX) :] if isinstance(value, str) and value.startswith(_PREFIX) else ""
    return len(hexdigits) == 64 and all(c in "0123456789abcdef" for c in hexdigits)


def read_digests(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # an editor's byte-order mark is fine
    except OSError as exc:
        raise OperatorsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OperatorsError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise OperatorsError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not all(map(_is_digest, data.values())):
        raise OperatorsError(f'{path} must be a JSON object {{"name": "sha256:<64 hex digits>"}}')
    return {check_signature(str(n)): d for n, d in data.items()}


class Operators:
    """The operators file as it is now. It must name someone at start; one that turns unreadable or
    invalid later admits nobody until it is mended (the log says why)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._digests = read_digests(self.path)
        if not self._digests:
            raise OperatorsError(f"{self.path} names no operator (add one with `capstan operators add NAME`)")
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _current(self) -> dict[str, str]:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._digests = read_digests(self.path)
            except OperatorsError as exc:
                log.error("operators file: %s; nobody is an operator until it is mended", exc)
                self._digests = {}
        return self._digests

    def who(self, token: str) -> str | None:
        """The operator `token` belongs to, or None. Every digest is compared, in constant time."""
        given = digest(token).encode()
        found = None
        for name, expected in self._current().items():
            if hmac.compare_digest(given, expected.encode()):
                found = name
        return found


def _write(path: Path, digests: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(digests, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise OperatorsError(f"cannot write {path}: {exc.strerror or exc}") from None


def add_operator(path: str | Path, name: str) -> str:
    """Add operator `name` to the file at `path` (or give them a new token, revoking the old);
    returns the new token."""
    path = Path(path)
    digests = read_digests(path) if path.exists() else {}
    token = secrets.token_urlsafe(24)
    digests[check_signature(name)] = digest(token)
    _write(path, digests)
    return token


def remove_operator(path: str | Path, name: str) -> None:
    path = Path(path)
    digests = read_digests(path)
    if name not in digests:
        raise OperatorsError(
            f"{path} has no operator {name!r} (it has {', '.join(sorted(digests)) or 'none'})"
        )
    del digests[name]
    _write(path, digests)
