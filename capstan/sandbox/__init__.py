"""Runs untrusted, LLM-generated policy code. Defence in depth, outermost first:

1. **OS isolation** (`isolation.py`, `seccomp.py`). Every run gets its own worker process,
   never the service process. The worker is started under bubblewrap when it works here:
   new user/mount/pid/net/ipc/uts/cgroup namespaces (no network at all), a read-only view of
   only what Python needs (/usr, /lib*, the interpreter prefix, numpy, shapely and this
   package; no /home, no repository, no /etc), a private tmpfs /tmp, a fresh /proc, all
   capabilities dropped, uid/gid 65534, no nested user namespaces, `--die-with-parent` and
   `--new-session`. Its environment is built from scratch (no API keys), it inherits only
   its channel socket, and it sets rlimits on itself (address space -> "memory", CPU, open
   files, file size, core dumps, processes). Before any untrusted byte arrives it installs a
   seccomp filter (BPF built with the stdlib) that allows only the ~40 system calls a worker
   makes after start-up (measured with strace) and refuses every other one, present or future,
   with EPERM: so fork/exec/clone-a-process, sockets, opening files for writing, file-system
   changes, IPC, signals, ptrace, namespaces, mounts, bpf, io_uring, prctl...; open only
   read-only, clone only for a thread, ioctl only TCGETS, prlimit64 only on itself. Where bwrap
   cannot start a sandbox, the worker is a plain child that confines itself with Landlock
   (landlock.py: reads only beneath Python's own directories, no writes, no TCP) before any
   untrusted byte arrives, and as root drops to uid 65534 once its imports are done. With
   neither boundary the sandbox fails closed: `Sandbox()` raises `NoIsolationError` naming the
   fix. Only CAPSTAN_SANDBOX_ISOLATION=unsafe-process (loud in logs, /healthz and on the page)
   runs a worker with no OS boundary: rlimits, scrubbed env, seccomp and the Python layers, on
   the host file system (read-only for it).
   `Sandbox.isolation` reports which layers are in force, measured inside the worker.
2. **Parent-side limits** (`executor.py`, `pool.py`). The parent enforces the wall-clock
   timeout and the cancel event by SIGKILLing the worker's process group (a C-level call
   that ignores signals cannot resist); workers are single-use, so no state leaks between
   runs; output, message sizes and nesting depth are capped on the host side.
3. **Safe wire** (`protocol.py`). Worker and host exchange length-prefixed frames of a small
   tagged binary encoding of plain data (None, bool, int, float, str, bytes, list, tuple,
   str-keyed dict, numpy arrays of allowlisted dtypes). Never pickle. Host functions stay on
   the trusted side: the program holds a stub that sends a call message; the host checks the
   name and the signature, calls, and sends back plain data or a (class name, message) error
   that the worker re-raises as a same-named PrimitiveError subclass. Host functions the
   caller declares pure (reads of a world that only the other host functions change) are
   answered again from the worker's memory until the next other call; the worker reports
   each such call (ahead of its next message, and from a reporter thread at least every
   20 ms) and the host makes it too, so checks and trace miss none.
4. **Python layer** (`safe_modules.py`). Not a security boundary (layers 1-2 are): its job is
   to keep policy code to its API and give the model clear errors. The program gets a
   restricted builtins dict (no open/eval/exec/getattr/vars/__import__...; `type()` with one
   argument, never a metaclass nor a function/descriptor/frame constructor), a guarded import
   that hands out module proxies (fresh module objects holding only the public attributes of
   numpy, shapely and a few stdlib modules; submodules only if allowlisted; no file, pickle or
   ctypes entry points) and a capped print.
5. **Static policy** (`policy.py`). Before a worker is used, the program is parsed and
   refused with line numbers for non-allowlisted imports, dunders, private attributes,
   frame/code/module attributes, string-keyed attribute access (getattr, format fields, a
   `.format` not called at once on a checked literal, positional class patterns, which read
   `__match_args__`), any attribute assignment or deletion (policy code has no objects of its
   own; a store could only rewrite a shared library class or module), 3-argument type(),
   classes and async code.

Layers 4-5 are what an in-process interpreter would have; here they are only the first
hurdles: tests run unchecked escape payloads and show layers 1-2 still hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ERROR_KINDS", "Sandbox", "SandboxResult", "Violation"]  # its errors: primitives.outcome.RunError

if TYPE_CHECKING:  # pragma: no cover
    from capstan.sandbox.executor import ERROR_KINDS, Sandbox, SandboxResult
    from capstan.sandbox.policy import Violation


def __getattr__(name: str):
    if name in ("ERROR_KINDS", "Sandbox", "SandboxResult"):
        from capstan.sandbox import executor

        return getattr(executor, name)
    if name == "Violation":
        from capstan.sandbox.policy import Violation

        return Violation
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
