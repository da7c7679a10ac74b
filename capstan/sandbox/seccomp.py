"""Seccomp filter the worker installs on itself once its imports are done (OS layer).

A classic-BPF program generated with the standard library (no libseccomp), loaded with
seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) so it covers every thread. It is an ALLOWLIST: only the
calls a worker makes after start-up pass (memory, reading files it opened, its channel socket,
futexes and sleeps, clocks, its own limits, random bytes, exit), as measured with strace over
the test suites, the sandbox benchmark and numpy/shapely/stdlib programs, plus what the kernel
and libc need on paths those runs did not take (restart_syscall, rt_sigreturn, a new thread's
start and exit, the vDSO's clock fallbacks). Every other call, present or future, returns EPERM
(Python sees an OSError; the worker does not die): new processes, sockets, file-system changes,
System V and POSIX IPC, signals, ptrace, namespaces, mounts, keyrings, bpf, io_uring, prctl,
memory policies, scheduling... Five allowed calls have their arguments checked: open/openat
only without write flags, clone only with CLONE_THREAD (a thread, never a process), ioctl only
TCGETS (what isatty() asks; no tty or driver ioctl on anything it can open), prlimit64 only for
pid 0, i.e. itself (with a real pid a program could shrink the limits of the next warm worker
of the same uid). clone3 and openat2 (flags behind a pointer) return ENOSYS so that libc falls
back to the checked calls. Reads of files stay allowed (the read-only bubblewrap view decides
what exists). x86-64 only; elsewhere it reports "unavailable" and the other layers remain.

Why the worker installs it rather than `bwrap --seccomp`: bwrap must still exec Python after
loading its filter, so that filter could not refuse execve; installed after start-up ours can,
and the same filter also protects workers without bwrap (Landlock or unsafe-process).
"""

from __future__ import annotations

import platform
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_EPERM, _ENOSYS = 1, 38
_CLONE_THREAD = 0x00010000
# O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE
_WRITE_FLAGS = 0x1 | 0x2 | 0x40 | 0x200 | 0x400 | 0x400000
_TCGETS = 0x5401

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

# Allowed whatever their arguments. Seen after install (strace of workers over tests/sandbox,
# tests/lmp, tests/primitives, `bench sandbox` and numpy/shapely/stdlib programs, bwrap and
# process isolation), except those marked "not seen".
_ALLOWED_X86_64 = {
    # memory: malloc, numpy (madvise MADV_HUGEPAGE), lazily loaded extension modules
    "brk": 12,
    "mmap": 9,
    "munmap": 11,
    "mremap": 25,
    "mprotect": 10,
    "madvise": 28,
    # files it opened read-only (open/openat are checked below), /proc/self in the ready report
    "read": 0,
    "pread64": 17,  # pread64 not seen: ld.so reads ELF notes with it (lazy dlopen)
    "write": 1,  # warnings to stderr (/dev/null); nothing it can open is writable
    "close": 3,
    "lseek": 8,
    "newfstatat": 262,
    "getdents64": 217,
    # not seen: what other glibc versions stat files with, and a polite yield
    "stat": 4,
    "fstat": 5,
    "lstat": 6,
    "statx": 332,
    "sched_yield": 24,
    # the channel socket (fd 3) and the reporter thread
    "sendto": 44,
    "recvfrom": 45,
    "futex": 202,
    "clock_nanosleep": 230,
    # clocks: CPU time of the run (CLOCK_PROCESS_CPUTIME_ID is not in the vDSO); the other
    # three are the vDSO's fallbacks on clock sources it cannot read (not seen here)
    "clock_gettime": 228,
    "clock_getres": 229,
    "gettimeofday": 96,
    "time": 201,
    "getrusage": 98,
    "getpid": 39,
    "getuid": 102,
    "getgid": 104,
    "getrandom": 318,  # random / numpy.random seeding
    "exit_group": 231,
    "exit": 60,  # not seen: a thread's exit (glibc loops on it forever if refused)
    "rt_sigreturn": 15,  # the end of any signal handler, e.g. glibc's setxid broadcast
    # not seen in benign runs: what a thread started with the clone allowed below needs, or it
    # kills the worker (glibc aborts a new thread whose rseq registration fails)
    "rseq": 334,
    "set_robust_list": 273,
    "rt_sigprocmask": 14,
    "gettid": 186,
    "restart_syscall": 219,  # not seen: resumes a sleep or futex wait interrupted by a stop
}
# Allowed only when their first argument (a pid) is 0, i.e. the worker itself.
_SELF_ONLY_X86_64 = {"prlimit64": 302}
_NR_OPEN, _NR_OPENAT, _NR_CLONE, _NR_IOCTL, _NR_CLONE3, _NR_OPENAT2 = 2, 257, 56, 16, 435, 437
_CHECKED = 4  # open, openat, clone, ioctl (plus _SELF_ONLY_X86_64)


def supported() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def build_filter() -> bytes:
    """The BPF program as `struct sock_filter[]` bytes."""
    prog: list[tuple[int, int | str, int | str, int]] = []  # (code, jt_label|0, jf_label|0, k)

    def emit(code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        prog.append((code, jt, jf, k))

    # Only constant loads of nr/arch, jumps and returns up to each unconditional "allow", so the
    # kernel (>= 5.11) caches those calls as always allowed and skips the program for them.
    emit(_LD_ABS, _OFF_ARCH)
    emit(_JEQ, _AUDIT_ARCH_X86_64, 0, "kill")
    emit(_LD_ABS, _OFF_NR)
    emit(_JGE, 0x40000000, "deny", 0)  # x32 ABI
    for nr in sorted(_ALLOWED_X86_64.values()):
        emit(_JEQ, nr, "allow", 0)
    emit(_JEQ, _NR_CLONE3, "nosys", 0)  # glibc falls back to clone(), checked below
    emit(_JEQ, _NR_OPENAT2, "nosys", 0)  # flags live behind a pointer: refuse, libc uses openat
    emit(_JEQ, _NR_CLONE, "clone", 0)
    emit(_JEQ, _NR_OPEN, "open", 0)
    emit(_JEQ, _NR_OPENAT, "openat", 0)
    emit(_JEQ, _NR_IOCTL, "ioctl", 0)
    for nr in sorted(_SELF_ONLY_X86_64.values()):
        emit(_JEQ, nr, "self_only", 0)
    emit(_RET, _RET_ERRNO | _EPERM)  # everything else
    labels = {"clone": len(prog)}
    emit(_LD_ABS, _OFF_ARG0)  # clone flags (low 32 bits)
    emit(_JSET, _CLONE_THREAD, "allow", "deny")
    labels["open"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0 + 8)  # open(path, flags)
    emit(_JSET, _WRITE_FLAGS, "deny", "allow")
    labels["openat"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0 + 16)  # openat(dirfd, path, flags)
    emit(_JSET, _WRITE_FLAGS, "deny", "allow")
    labels["ioctl"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0 + 8)  # ioctl(fd, cmd, arg): cmd is an unsigned int
    emit(_JEQ, _TCGETS, "allow", "deny")
    labels["self_only"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0)  # pid_t: the kernel reads the low 32 bits
    emit(_JEQ, 0, "allow", "deny")
    for label, ret in (
        ("allow", _RET_ALLOW),
        ("deny", _RET_ERRNO | _EPERM),
        ("nosys", _RET_ERRNO | _ENOSYS),
        ("kill", _RET_KILL_PROCESS),
    ):
        labels[label] = len(prog)
        emit(_RET, ret)

    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(prog):
        jt_off = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf_off = labels[jf] - i - 1 if isinstance(jf, str) else jf
        if not (0 <= jt_off < 256 and 0 <= jf_off < 256):
            raise ValueError("seccomp program too long for 8-bit jumps")
        out += struct.pack("=HBBI", code, jt_off, jf_off, k)
    return bytes(out)


def install() -> str:
    """Install the filter on every thread of this process; returns a status for the report."""
    if not supported():
        return f"unavailable (no filter for {platform.machine()})"
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    program = build_filter()

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return f"failed (prctl NO_NEW_PRIVS errno {ctypes.get_errno()})"
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(317), ctypes.c_long(1), ctypes.c_long(1), ctypes.byref(fprog))
    if rc != 0:
        return f"failed (seccomp errno {ctypes.get_errno()})"
    allowed = len(_ALLOWED_X86_64) + len(_SELF_ONLY_X86_64) + _CHECKED
    return f"active ({len(program) // 8} BPF instructions, {allowed} syscalls allowed, all others refused)"
