"""Operators who may approve or reject a program before it moves a robot (CAPSTAN_OPERATORS).

Without the file, whoever holds the API token signs a decision with any name (`by`), and the trace
marks it unverified. With it, a decision needs the operator's own token (header `X-Operator-Token`),
and the trace names the operator the token belongs to. The file is JSON, `{"name": "sha256:<hex>"}`:
only digests are stored, so reading it does not reveal a token. `capstan operators add NAME` writes
one and prints its token once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

RESERVED = ("timeout", "e-stop")  # the service's own decisions
_PREFIX = "sha256:"


class OperatorsError(ValueError):
    """The operators file is missing, malformed, or names a reserved or unusable operator."""


def digest(token: str) -> str:
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _is_digest(value: object) -> bool:
    hexdigits = value[len(_PREFIX) :] if isinstance(value, str) and value.startswith(_PREFIX) else ""
    return len(hexdigits) == 64 and all(c in "0123456789abcdef" for c in hexdigits)


def _check_name(name: str) -> str:
    if not (1 <= len(name) <= 100) or name != name.strip() or not name.isprintable():
        raise OperatorsError(f"{name!r} is not a usable operator name (1-100 printable characters)")
    if name.lower() in RESERVED:
        raise OperatorsError(f"{name!r} is reserved for the service's own decisions")
    return name


class Operators:
    def __init__(self, digests: dict[str, str]):
        self._digests = {_check_name(n): d for n, d in digests.items()}

    @classmethod
    def load(cls, path: str | Path) -> Operators:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise OperatorsError(f"cannot read {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise OperatorsError(f"{path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or not all(map(_is_digest, data.values())):
            raise OperatorsError(f'{path} must be a JSON object {{"name": "sha256:<64 hex digits>"}}')
        return cls(data)

    @property
    def names(self) -> list[str]:
        return sorted(self._digests)

    def who(self, token: str) -> str | None:
        """The operator `token` belongs to, or None. Every digest is compared, in constant time."""
        given = digest(token).encode()
        found = None
        for name, expected in self._digests.items():
            if hmac.compare_digest(given, expected.encode()):
                found = name
        return found


def add_operator(path: str | Path, name: str) -> str:
    """Add (or give a new token to) operator `name` in the file at `path`; returns the new token."""
    path = Path(path)
    digests = Operators.load(path)._digests if path.exists() else {}
    token = secrets.token_urlsafe(24)
    digests[_check_name(name)] = digest(token)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(digests, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return token
