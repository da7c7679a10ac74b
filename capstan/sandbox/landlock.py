"""Landlock: the OS boundary for hosts that refuse user namespaces (Docker's default profile).

A process restricts itself, for good, before any untrusted byte arrives: it may read files only
beneath the directories it is given, may write, create, remove or link nothing anywhere, and
(kernel ABI 4 and later) may neither bind nor connect TCP sockets; from ABI 6 it can signal no
process and reach no abstract UNIX socket outside its own domain. Stdlib only (ctypes system
calls): this module is loaded inside the sandbox worker.
"""

from __future__ import annotations

import ctypes
import os

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and aarch64 alike
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

READ_FILE, READ_DIR = 1 << 2, 1 << 3
_FS_BY_ABI = {
    1: (1 << 13) - 1,
    2: (1 << 14) - 1,
    3: (1 << 15) - 1,
    5: (1 << 16) - 1,
}  # every right the ABI knows
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class LandlockError(OSError):
    """Landlock is missing here or refused a step."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable (old kernel, not enabled)."""
    rc = _libc().syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    return int(rc) if rc > 0 else 0


def restrict_self(read_only: list[str]) -> dict:
    """Allow reading beneath `read_only` (dirs or files) and nothing else, for good; returns what is
    in force. Raises LandlockError if any step fails: the caller must then not run untrusted code."""
    abi = abi_version()
    if abi < 1:
        raise LandlockError("Landlock is not available on this kernel")
    libc = _libc()
    handled_fs = _FS_BY_ABI[max(a for a in _FS_BY_ABI if a <= abi)]
    attr = _RulesetAttr(
        handled_fs,
        _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0,
        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0,
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise LandlockError(ctypes.get_errno(), f"landlock_create_ruleset failed (ABI {abi})")
    allowed = []
    try:
        for path in read_only:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this host does not have grants nothing
            try:
                access = READ_FILE | READ_DIR if os.path.isdir(path) else READ_FILE
                rule = _PathBeneathAttr(access, fd)
                if (
                    libc.syscall(
                        ctypes.c_long(_SYS_ADD_RULE),
                        ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(rule),
                        ctypes.c_uint32(0),
                    )
                    != 0
                ):
                    raise LandlockError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
                allowed.append(path)
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return {
        "abi": abi,
        "read_only": allowed,
        "writes": "none: no file may be written, created, removed, renamed or linked",
        "network": "TCP bind and connect refused"
        if abi >= 4
        else "not covered by this ABI (seccomp refuses sockets)",
        "scoped": "signals and abstract UNIX sockets outside the sandbox refused"
        if abi >= 6
        else "not covered",
    }
