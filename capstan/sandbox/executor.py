"""`Sandbox`: the trusted side of a run (see docs/CONTRACTS.md "Sandbox").

run() checks the program statically, takes a warm worker, sends the program, serves host
function calls (validated, one at a time, in the calling thread) until the worker reports
"done", enforces the wall-clock timeout and the cancel event by killing the worker, and turns
every outcome into a SandboxResult. Nothing from the worker is ever unpickled or eval'ed.
"""

from __future__ import annotations

import ast
import enum
import inspect
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Self

from capstan.primitives import errors
from capstan.primitives.errors import PrimitiveError as _HostPrimitiveError
from capstan.primitives.outcome import SANDBOX_ERROR_KINDS, ErrorKind, RunError
from capstan.sandbox import policy, protocol
from capstan.sandbox.isolation import detect
from capstan.sandbox.pool import Launcher, PoolError, WorkerPool

ERROR_KINDS = SANDBOX_ERROR_KINDS
_MAX_TEXT = 4000


@dataclass
class SandboxResult:
    error: RunError | None = None  # its kind is one of ERROR_KINDS
    values: dict = field(default_factory=dict)
    stdout: str = ""
    duration_s: float = 0.0
    cpu_s: float | None = None  # CPU time the worker spent in the program, as it reported it

    @property
    def ok(self) -> bool:
        return self.error is None


class SandboxState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Sandbox:
    """Runs untrusted policy code in isolated, single-use worker processes.

    `pool_size` workers are kept warm (started at construction); the pool grows on demand up
    to `max_workers` (default max(8, 2 * pool_size)) for concurrent and nested runs.
    `memory_mb` caps each worker's address space (over it: kind "memory"); `stdout_limit`
    caps captured print output (characters); `max_message_bytes` caps any message from a
    worker and a run's result, `max_call_bytes` one host-function call's arguments.
    `extra_modules` extends the import allowlist (each gets a proxy of its public,
    non-module attributes). `isolation` is "auto" (bubblewrap if it works here, else Landlock,
    else `NoIsolationError`, which names the fix), "bwrap" or "landlock" (that one or the error),
    or "unsafe-process" (no OS boundary; chosen knowingly). `acquire_timeout_s` bounds the wait
    for a free worker (the run's `timeout_s` only starts once the program can run).
    `_unsafe_skip_static_check` is for tests only.
    """

    def __init__(
        self,
        pool_size: int = 2,
        *,
        max_workers: int | None = None,
        memory_mb: int = 1024,
        stdout_limit: int = 65536,
        max_message_bytes: int = 8 << 20,
        max_call_bytes: int = 1 << 20,
        extra_modules: Iterable[str] = (),
        isolation: str = "auto",
        acquire_timeout_s: float = 30.0,
        cpu_budget_s: float = 10.0,
        max_host_calls: int = 10_000,
        _unsafe_skip_static_check: bool = False,
    ):
        if pool_size < 0:
            raise ValueError("pool_size must be >= 0")
        self.extra_modules = tuple(extra_modules)
        unsafe = sorted(
            m
            for m in self.extra_modules
            if m.split(".")[0] in policy.UNSAFE_MODULES
            or (m.split(".")[0] in ("numpy", "shapely") and m not in policy.DEFAULT_MODULES)
        )
        if unsafe:
            raise ValueError(
                f"extra_modules {unsafe} would give policy code a door to the host (files, processes, "
                "interpreter internals); numpy/shapely are already available through their proxies"
            )
        self.allowed_modules = policy.DEFAULT_MODULES | frozenset(self.extra_modules)
        self.stdout_limit = stdout_limit
        self.acquire_timeout_s = acquire_timeout_s
        if not cpu_budget_s > 0 or max_host_calls < 1:
            raise ValueError("cpu_budget_s must be positive and max_host_calls at least 1")
        # Computation and waiting are budgeted apart: a program may wait minutes for motions
        # (host calls, no CPU of its own) but compute only `cpu_budget_s`; host calls, which
        # cost the host's CPU and the trace's space, are counted.
        self.cpu_budget_s = cpu_budget_s
        self.max_host_calls = max_host_calls
        self.max_message_bytes = max_message_bytes
        self._skip_check = _unsafe_skip_static_check
        self._iso = detect(isolation, self.extra_modules)
        config = {
            "primitive_errors": errors.mirror_spec(),
            "memory_mb": memory_mb,
            "extra_modules": list(self.extra_modules),
            "max_call_bytes": max_call_bytes,
            "max_result_bytes": max_message_bytes,
            "max_report_bytes": min(protocol.MAX_READS_REPORT_BYTES, max_message_bytes // 2),
            "max_reply_bytes": 64 << 20,
        }
        launcher = Launcher(self._iso, config, max_message_bytes)
        self._pool = WorkerPool(launcher, pool_size, max_workers or max(8, 2 * pool_size))
        self._state = SandboxState.OPEN
        self._lock = threading.Lock()
        self._memory_mb = memory_mb

    # ------------------------------------------------------------------ public

    @property
    def isolation(self) -> dict:
        """The layers in force; the worker-side part is what the first worker measured itself."""
        report = {**self._iso.report(), "static_policy": not self._skip_check}
        report["python_layer"] = "module proxies, restricted builtins, guarded import, no host objects"
        report["wire"] = "length-prefixed tagged binary (no pickle), host-side size and depth caps"
        report["rlimits_requested"] = {
            "RLIMIT_AS_MB": self._memory_mb,
            "RLIMIT_CPU": f"min(timeout, {self.cpu_budget_s:g} s) of computation",
        }
        report["max_host_calls"] = self.max_host_calls
        if self._pool.size:
            self._pool.wait_ready(1, 15.0)
        worker = self._pool.first_report
        report["worker"] = worker if worker is not None else "no worker has started yet"
        if worker is not None:
            report["seccomp"] = worker.get("seccomp")
        return report

    def check(self, code: str, allowed_names: Iterable[str] | None = None) -> list[policy.Violation]:
        """Static check only (no worker): violations with line numbers, empty when fine."""
        return policy.check(code, self.allowed_modules, allowed_names, _star_names)

    def star_names(self, code: str) -> set[str]:
        """The names the program's `from M import *` of allowed modules bind (empty if it has none
        or does not parse)."""
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            return set()
        return {name for m in policy.star_modules(tree, self.allowed_modules) for name in _star_names(m)}

    def run(
        self,
        code: str,
        host_functions: Mapping[str, Callable] | None = None,
        timeout_s: float = 60.0,
        return_names: Iterable[str] = ("ret_val",),
        cancel: threading.Event | None = None,
        pure: Iterable[str] = (),
    ) -> SandboxResult:
        """Run `code` with `host_functions` callable from it.

        `pure` names host functions whose answer depends only on their arguments until the
        program calls any other host function (reads of a world that only those calls change).
        The worker answers a repeated pure call itself and reports it afterwards, and the host
        then makes the call too, so every call is still checked and seen here; the program
        just does not wait for the round trip.
        """
        start = time.monotonic()
        if self._state is SandboxState.CLOSED:
            raise RuntimeError("this Sandbox is closed; create a new one")
        host_functions = dict(host_functions or {})
        return_names = tuple(return_names)
        pure = frozenset(pure)
        _validate_names(host_functions, return_names)
        if not pure <= host_functions.keys():
            raise ValueError(f"pure names {sorted(pure - host_functions.keys())} are not host functions")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
        if not self._skip_check:
            violations = self.check(code)
            if violations:
                first = violations[0]
                kind = ErrorKind.SYNTAX if first.kind == "syntax" else ErrorKind.VIOLATION
                message = "; ".join(str(v) for v in violations)
                return _done(start, RunError(kind, message, first.line))
        try:
            worker = self._pool.acquire(start + self.acquire_timeout_s, cancel)
        except protocol.ChannelCancelled:
            return _done(start, RunError(ErrorKind.CANCELLED, "the run was cancelled before it started"))
        except protocol.ChannelTimeout:
            message = (
                f"no sandbox worker became free within {self.acquire_timeout_s:g} s (all busy or still "
                "starting); raise max_workers or acquire_timeout_s"
            )
            return _done(start, RunError(ErrorKind.TIMEOUT, message))
        except PoolError as exc:
            return _done(start, RunError(ErrorKind.CRASH, str(exc)))
        deadline = time.monotonic() + timeout_s  # the program's budget starts when it can run
        try:
            spec = {
                "code": code,
                "host_functions": list(host_functions),
                "return_names": list(return_names),
                "pure": sorted(pure),
                "timeout_s": float(timeout_s),
                "cpu_s": float(min(timeout_s, self.cpu_budget_s)),
                "stdout_limit": self.stdout_limit,
            }
            session = _Session(
                worker,
                host_functions,
                pure,
                return_names,
                deadline,
                cancel,
                timeout_s,
                self.stdout_limit,
                spec["cpu_s"],
                self.max_host_calls,
            )
            return session.serve(spec, start)
        finally:
            self._pool.release(worker)

    def close(self) -> None:
        with self._lock:
            if self._state is SandboxState.CLOSED:
                return
            self._state = SandboxState.CLOSED
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, count: int | None = None, timeout_s: float = 30.0) -> bool:
        """Block until `count` (default: pool_size) workers are warm; for benchmarks and tests."""
        return self._pool.wait_ready(self._pool.size if count is None else count, timeout_s)


class _HostCallBudget(Exception):
    """The run made more host calls than its budget."""


class _Session:
    """One run's conversation with its worker."""

    def __init__(
        self,
        worker,
        host_functions,
        pure,
        return_names,
        deadline,
        cancel,
        timeout_s,
        stdout_limit,
        cpu_s: float = 10.0,
        max_host_calls: int = 10_000,
    ):
        self.cpu_s = cpu_s
        self.calls = 0
        self.max_host_calls = max_host_calls
        self.worker = worker
        self.return_names = return_names
        self.chan = worker.chan
        self.host_functions = host_functions
        self.pure = pure
        self.deadline = deadline
        self.cancel = cancel
        self.timeout_s = timeout_s
        self.stdout_limit = stdout_limit
        self.signatures: dict[str, _CallShape | None] = {}

    def serve(self, spec: dict, start: float) -> SandboxResult:
        try:
            self.chan.send(("run", spec), deadline=self.deadline, cancel=self.cancel)
            while True:
                self._check_time()  # also between frames that arrived together
                message = self.chan.recv(self.deadline, self.cancel)
                if type(message) is not tuple or not message or type(message[0]) is not str:
                    raise protocol.ProtocolError("worker sent a message that is not a tagged tuple")
                if message[0] == "call":
                    self._serve_call(message)
                elif message[0] == "reads":
                    self._replay_reads(message)
                elif message[0] == "done":
                    return self._finish(message, start)
                else:
                    raise protocol.ProtocolError(f"worker sent an unexpected {message[0]!r} message")
        except protocol.ChannelTimeout:
            self.worker.kill()
            message = (
                f"the program did not finish within {self.timeout_s:g} s and was stopped; "
                "look for an endless loop or a very slow computation"
            )
            return _done(start, RunError(ErrorKind.TIMEOUT, message))
        except protocol.ChannelCancelled:
            self.worker.kill()
            return _done(start, RunError(ErrorKind.CANCELLED, "the run was cancelled"))
        except _HostCallBudget:
            self.worker.kill()
            message = (
                f"the program made more than {self.max_host_calls} calls to the robot API in one run and was "
                "stopped; look for a loop that never ends or that calls a function far more often than needed"
            )
            return _done(start, RunError(ErrorKind.TIMEOUT, message))
        except protocol.ChannelClosed:
            return _done(start, self._death_error())
        except (protocol.ProtocolError, OSError) as exc:
            self.worker.kill()
            return _done(start, RunError(ErrorKind.CRASH, f"sandbox worker misbehaved and was killed: {exc}"))

    def _check_time(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise protocol.ChannelCancelled()
        if time.monotonic() >= self.deadline:
            raise protocol.ChannelTimeout()

    def _death_error(self) -> RunError:
        how = self.worker.exit_description()
        if "SIGXCPU" in how:
            message = (
                f"the program computed for longer than its CPU budget of {self.cpu_s:g} s and was "
                f"stopped ({how}); look for an endless loop or a very slow computation"
            )
            return RunError(ErrorKind.TIMEOUT, message)
        if "SIGSEGV" in how or "SIGABRT" in how or "SIGBUS" in how:
            return RunError(ErrorKind.CRASH, f"the sandbox worker crashed ({how}), possibly out of memory")
        return RunError(ErrorKind.CRASH, f"the sandbox worker died unexpectedly ({how})")

    def _serve_call(self, message: tuple) -> None:
        _tag, name, args, kwargs = _call_parts(message)
        fn = self.host_functions.get(name)
        if fn is None:
            reply = ("exc", "builtin", "NameError", f"no host function named {name[:100]!r}")
        else:
            reply = self._invoke(name, fn, args, kwargs)
        try:
            self.chan.send(reply, deadline=self.deadline, cancel=self.cancel)
        except protocol.EncodeError as exc:
            self.chan.send(
                ("exc", "host", "HostFunctionError", f"{name}() returned a value that cannot be sent: {exc}"),
                deadline=self.deadline,
                cancel=self.cancel,
            )

    def _replay_reads(self, message: tuple) -> None:
        """Pure calls the worker answered from its memo: make them here too (checks, trace).
        The worker already has the answers, so nothing goes back."""
        reads = message[1] if len(message) == 2 else None
        if type(reads) is not list or len(reads) > protocol.MAX_READS_PER_REPORT:
            raise protocol.ProtocolError("malformed reads report")
        for call in reads:
            self._check_time()
            _tag, name, args, kwargs = _call_parts(call)
            if name not in self.pure:
                raise protocol.ProtocolError(
                    f"worker reported a memoised answer of {name[:100]!r}, not a pure read"
                )
            self._invoke(name, self.host_functions[name], args, kwargs)

    def _invoke(self, name: str, fn: Callable, args: tuple, kwargs: dict) -> tuple:
        self.calls += 1
        if self.calls > self.max_host_calls:
            raise _HostCallBudget()
        if name not in self.signatures:
            self.signatures[name] = _CallShape.of(fn)
        shape = self.signatures[name]
        if shape is not None and not shape.accepts_fast(len(args), kwargs):
            try:
                shape.signature.bind(*args, **kwargs)
            except TypeError as exc:
                return ("exc", "builtin", "TypeError", f"{name}(): {exc}")
        try:
            return ("ret", fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - host exceptions never cross as objects
            if isinstance(exc, _HostPrimitiveError):
                return ("exc", "primitive", type(exc).__name__, _text(str(exc)))
            return (
                "exc",
                "host",
                "HostFunctionError",
                f"host function {name}() failed: {type(exc).__name__}",
            )

    def _finish(self, message: tuple, start: float) -> SandboxResult:
        if len(message) != 2 or type(message[1]) is not dict:
            raise protocol.ProtocolError("malformed done message")
        body = message[1]
        values = body.get("values")
        stdout = body.get("stdout")
        error = body.get("error")
        if type(values) is not dict or type(stdout) is not str:
            raise protocol.ProtocolError("malformed done message")
        if len(stdout) > self.stdout_limit + 200:
            stdout = stdout[: self.stdout_limit] + "\n[... output truncated]\n"
        stdout = stdout.replace("\x00", "\ufffd")  # some databases refuse NUL in text
        result_error = None
        if error is not None:
            if type(error) is not dict or error.get("kind") not in ERROR_KINDS:
                raise protocol.ProtocolError("malformed error in done message")
            line = error.get("line")
            line = line if type(line) is int and 0 < line < 10**7 else None
            result_error = RunError(ErrorKind(error["kind"]), _text(error.get("message")), line)
        values = {name: values[name] for name in self.return_names if name in values}
        cpu_s = body.get("cpu_s")
        cpu_s = float(cpu_s) if type(cpu_s) is float and 0.0 <= cpu_s < 1e6 else None
        return SandboxResult(result_error, values, stdout, time.monotonic() - start, cpu_s)


@dataclass(frozen=True)
class _CallShape:
    """A host function's signature, with a fast check for the common positional-only call."""

    signature: inspect.Signature
    min_positional: int
    max_positional: float

    @classmethod
    def of(cls, fn: Callable) -> _CallShape | None:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        kinds = inspect.Parameter
        positional = [
            p
            for p in signature.parameters.values()
            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        required_kw = any(
            p.kind is kinds.KEYWORD_ONLY and p.default is kinds.empty for p in signature.parameters.values()
        )
        var_positional = any(p.kind is kinds.VAR_POSITIONAL for p in signature.parameters.values())
        required = sum(1 for p in positional if p.default is kinds.empty)
        if required_kw:
            required = 1 << 30  # never take the fast path
        return cls(signature, required, math.inf if var_positional else len(positional))

    def accepts_fast(self, n_args: int, kwargs: dict) -> bool:
        return not kwargs and self.min_positional <= n_args <= self.max_positional


def _call_parts(message) -> tuple:
    """("call", name, args, kwargs) with the right types, or ProtocolError."""
    if (
        type(message) is not tuple
        or len(message) != 4
        or message[0] != "call"
        or type(message[1]) is not str
        or type(message[2]) is not tuple
        or type(message[3]) is not dict
    ):
        raise protocol.ProtocolError("malformed host function call")
    return message


def _text(value) -> str:
    text = (value if isinstance(value, str) else repr(value)).replace("\x00", "\ufffd")
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + " [...]"


def _done(start: float, error: RunError) -> SandboxResult:
    return SandboxResult(error=error, duration_s=time.monotonic() - start)


def _validate_names(host_functions: dict, return_names: tuple) -> None:
    for name in (*host_functions, *return_names):
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
            raise ValueError(f"{name!r} is not a valid name for a host function or return value")
    for name, fn in host_functions.items():
        if not callable(fn):
            raise TypeError(f"host function {name!r} is not callable")


def _star_names(module: str) -> frozenset[str]:
    from capstan.sandbox.safe_modules import public_names  # imports numpy and shapely: only when asked

    return public_names(module)
