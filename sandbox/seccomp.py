"""Seccomp filter the worker installs on itself once its imports are done (OS layer).

A classic-BPF program generated with the standard library (no libseccomp), loaded with
seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) so it covers every thread. It refuses with EPERM:
new processes (fork/vfork/execve, clone without CLONE_THREAD), sockets, opening files for
writing and every call that changes the file system (modes, extended attributes included),
System V and POSIX IPC (shared memory there is not counted by RLIMIT_AS and, without an IPC
namespace, outlives the worker), signalling or re-limiting other processes (prlimit64 and the
scheduler calls only for pid 0, i.e. itself), ptrace, namespaces, mounts, keyrings, bpf,
io_uring, module loading, the kernel log and the clocks... Reads of files stay allowed
(the read-only bubblewrap view decides what exists). x86-64 only; elsewhere it reports
"unavailable" and the other layers remain.

Why the worker installs it rather than `bwrap --seccomp`: bwrap must still exec Python after
loading its filter, so that filter could not refuse execve; installed after start-up ours can,
and the same filter also protects the no-bwrap fallback.
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

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

_DENIED_X86_64 = {
    "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53,
    "fork": 57, "vfork": 58, "execve": 59, "kill": 62, "truncate": 76, "ftruncate": 77,
    "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86, "unlink": 87, "symlink": 88,
    "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "ptrace": 101,
    "rt_sigqueueinfo": 129, "utime": 132, "mknod": 133, "personality": 135, "vhangup": 153,
    "modify_ldt": 154, "pivot_root": 155, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171,
    "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176, "quotactl": 179,
    "tkill": 200, "tgkill": 234, "utimes": 235, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "mkdirat": 258, "mknodat": 259, "fchownat": 260,
    "futimesat": 261, "unlinkat": 263, "renameat": 264, "linkat": 265, "symlinkat": 266,
    "fchmodat": 268, "unshare": 272, "utimensat": 280, "accept4": 288, "rt_tgsigqueueinfo": 297,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "renameat2": 316, "seccomp": 317, "kexec_file_load": 320, "bpf": 321, "execveat": 322,
    "userfaultfd": 323, "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "pidfd_open": 434, "pidfd_getfd": 438, "mount_setattr": 442,
    # System V and POSIX IPC
    "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semtimedop": 220, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244,
    "mq_getsetattr": 245,
    # file-system changes that are not an open() for writing
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "quotactl_fd": 443, "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466,
    # other processes' priorities, the kernel log, the clocks, old binary loading
    "setpriority": 141, "ioprio_set": 251, "syslog": 103, "adjtimex": 159, "settimeofday": 164,
    "clock_settime": 227, "clock_adjtime": 305, "uselib": 134,
}  # fmt: skip
# Allowed only when their first argument (a pid) is 0, i.e. the worker itself: with a real pid a
# program could, e.g., shrink the memory limit of the next warm worker of the same uid.
_SELF_ONLY_X86_64 = {
    "sched_setparam": 142, "sched_setscheduler": 144, "sched_setaffinity": 203, "migrate_pages": 256,
    "get_robust_list": 274, "move_pages": 279, "prlimit64": 302, "sched_setattr": 314,
}  # fmt: skip
_NR_OPEN, _NR_OPENAT, _NR_CLONE, _NR_CLONE3, _NR_OPENAT2 = 2, 257, 56, 435, 437


def supported() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def build_filter() -> bytes:
    """The BPF program as `struct sock_filter[]` bytes."""
    prog: list[tuple] = []  # (code, jt_label|0, jf_label|0, k)

    def emit(code, k, jt=0, jf=0):
        prog.append((code, jt, jf, k))

    emit(_LD_ABS, _OFF_ARCH)
    emit(_JEQ, _AUDIT_ARCH_X86_64, 0, "kill")
    emit(_LD_ABS, _OFF_NR)
    emit(_JGE, 0x40000000, "deny", 0)  # x32 ABI
    for nr in sorted(_DENIED_X86_64.values()):
        emit(_JEQ, nr, "deny", 0)
    emit(_JEQ, _NR_CLONE3, "nosys", 0)  # glibc falls back to clone(), checked below
    emit(_JEQ, _NR_OPENAT2, "nosys", 0)  # flags live behind a pointer: refuse, libc uses openat
    emit(_JEQ, _NR_CLONE, "clone", 0)
    emit(_JEQ, _NR_OPEN, "open", 0)
    emit(_JEQ, _NR_OPENAT, "openat", 0)
    for nr in sorted(_SELF_ONLY_X86_64.values()):
        emit(_JEQ, nr, "self_only", 0)
    emit(_RET, _RET_ALLOW)
    labels = {"clone": len(prog)}
    emit(_LD_ABS, _OFF_ARG0)  # clone flags (low 32 bits)
    emit(_JSET, _CLONE_THREAD, "allow", "deny")
    labels["open"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0 + 8)  # open(path, flags)
    emit(_JSET, _WRITE_FLAGS, "deny", "allow")
    labels["openat"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0 + 16)  # openat(dirfd, path, flags)
    emit(_JSET, _WRITE_FLAGS, "deny", "allow")
    labels["self_only"] = len(prog)
    emit(_LD_ABS, _OFF_ARG0)  # pid_t: the kernel reads the low 32 bits
    emit(_JEQ, 0, "allow", "deny")
    for label, ret in (("allow", _RET_ALLOW), ("deny", _RET_ERRNO | _EPERM),
                       ("nosys", _RET_ERRNO | _ENOSYS), ("kill", _RET_KILL_PROCESS)):  # fmt: skip
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
    return f"active ({len(program) // 8} BPF instructions, {len(_DENIED_X86_64) + len(_SELF_ONLY_X86_64) + 4} syscalls refused or checked)"
