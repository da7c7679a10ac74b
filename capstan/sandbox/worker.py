"""The sandbox worker: the child process that runs ONE program, then exits.

Start-up (trusted, before any untrusted byte arrives): move the channel to fd 3 and close
every other descriptor, import numpy/shapely and build the module proxies, set rlimits,
install the seccomp filter, report "ready" with what is really in force. Then wait for one
"run" message, execute the program with the restricted globals, send "done" and exit.
Host functions are stubs that send "call" messages and block for the reply.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

WORKER_FD = 3
PROGRAM_FILENAME = "<policy>"
_MAX_MESSAGE_CHARS = 2000
REPORT_EVERY_S = 0.02  # how stale the host's view of answered reads may get
# Below the service: a worker boots right after each run, just when the next command's model call
# starts; it gives way to the model's threads (which wait for each other at every layer).
NICE = 10


def main(fd: int, config_json: str) -> None:
    os.nice(NICE)
    config = json.loads(config_json)
    if fd != WORKER_FD:
        os.dup2(fd, WORKER_FD)
        os.close(fd)
    os.closerange(WORKER_FD + 1, 4096)
    sys.setrecursionlimit(config.get("recursion_limit", 1000))

    import socket

    from capstan.sandbox import isolation, landlock, protocol, safe_modules, seccomp

    proxies = safe_modules.build_module_proxies(config.get("extra_modules", ()))
    errors = safe_modules.make_primitive_errors(config["primitive_errors"])
    chan = protocol.Channel(
        socket.socket(fileno=WORKER_FD),
        max_frame=config.get("max_reply_bytes", 64 << 20),
    )
    runner = Runner(chan, proxies, errors, config)  # now: a run must not pay for its imports
    _warm_up()
    privileges = isolation.drop_root()  # before die_with_parent: a uid change clears PDEATHSIG
    isolation.die_with_parent()
    rlimits = isolation.apply_rlimits(config.get("memory_mb", 1024))
    # Landlock before seccomp (which refuses its calls); a failure ends the worker before "ready"
    confined = landlock.restrict_self(config["landlock"]) if "landlock" in config else None
    seccomp_status = seccomp.install() if config.get("seccomp", True) else "disabled by configuration"
    report = {**_self_report(rlimits, seccomp_status), "privileges": privileges}
    if confined is not None:
        report["landlock"] = confined
    chan.send(("ready", report))
    try:
        message = chan.recv()
    except protocol.ChannelClosed:
        os._exit(0)
    if isinstance(message, tuple) and message and message[0] == "run":
        try:
            result = runner.run(message[1])
        except Exception as exc:  # noqa: BLE001 - a worker fault is reported, not a silent exit
            error = {"kind": "crash", "message": f"sandbox worker fault: {_describe(exc)}", "line": None}
            result = {"values": {}, "stdout": "", "error": error}
        with runner.send_lock:  # held until exit: the reporter sends nothing after "done"
            try:
                reads = runner.memo.take_report()
            except Exception:  # noqa: BLE001 - losing the last reads must not lose the result
                reads = b""
            _send_done(chan, result, config.get("max_result_bytes", 8 << 20), reads)
    os._exit(0)


def _warm_up() -> None:
    """Load what compiling and running a program may import lazily, while files are still
    readable (without bwrap, root is dropped next): non-ASCII identifiers need unicodedata."""
    import encodings.idna  # noqa: F401
    import unicodedata  # noqa: F401

    compile("é = 1\nf'{é!r:>3}'", "<warm-up>", "exec")


def _self_report(rlimits: dict, seccomp_status: str) -> dict:
    status = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Seccomp", "NoNewPrivs", "CapEff", "CapBnd", "Uid", "Gid"):
                    status[key] = value.strip()
        fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    except OSError:
        fds = []
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "seccomp": seccomp_status,
        "proc_status": status,
        "rlimits": rlimits,
        "env_keys": sorted(os.environ),
        "open_fds": fds,
    }


def _send_done(chan, result: dict, limit: int, reads: bytes) -> None:
    from capstan.sandbox import protocol

    try:
        payload = protocol.encode(("done", result), limit)
    except protocol.EncodeError as exc:
        result = {
            "values": {},
            "stdout": result["stdout"][:10000],
            "error": {
                "kind": "policy",
                "message": f"the program's result cannot be returned: {exc}",
                "line": None,
            },
        }
        payload = protocol.encode(("done", result), limit)
    chan.send_raw(payload, before=reads)


class HostFunction:
    """What the program holds instead of a host function: a name and a channel it cannot see."""

    __slots__ = ("_call", "_name")

    def __init__(self, name: str, call):
        self._name = name
        self._call = call

    def __call__(self, *args, **kwargs):
        return self._call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<host function {self._name}>"

    def __reduce_ex__(self, protocol):
        # the pickle protocol (and so copy.copy) would hand out the slots: the runner and its channel
        raise TypeError("a host function cannot be pickled or copied")


class Runner:
    def __init__(self, chan, proxies: dict, errors: dict, config: dict):
        from capstan.sandbox import protocol, safe_modules
        from capstan.sandbox.memo import ReadMemo

        self.chan = chan
        self.proxies = proxies
        self.errors = errors
        self.config = config
        self.protocol = protocol
        self.safe_modules = safe_modules
        self.max_call_bytes = config.get("max_call_bytes", 1 << 20)
        # answers of the run's pure host functions (run() says which), and the thread that
        # sends the report of those answered here at least every REPORT_EVERY_S
        self.memo = ReadMemo(max_report_bytes=config.get("max_report_bytes", protocol.MAX_READS_REPORT_BYTES))
        self.send_lock = threading.Lock()  # one sender at a time: the program's thread or the reporter
        self.running = threading.Event()
        # started now: the worker's rlimits allow no new threads (seccomp covers it: TSYNC)
        threading.Thread(target=self._report_answered_reads, name="reads-reporter", daemon=True).start()

    def _report_answered_reads(self) -> None:
        """Reads answered from the memo reach the host within REPORT_EVERY_S even while the
        program computes, so a run stopped by its timeout or cancel loses at most that much
        of its trace."""
        self.running.wait()
        while True:
            time.sleep(REPORT_EVERY_S)
            with self.send_lock:
                report = self.memo.take_report()
                try:
                    if report:
                        self.chan.send_framed(report)
                except OSError:
                    return  # the host is gone

    def call_host(self, name: str, args: tuple, kwargs: dict):
        memo = self.memo
        pure = name in memo.pure
        key = memo.simple_key(name, args, kwargs) if pure else None
        payload = None
        if key is None:
            payload = self._encode_call(name, args, kwargs)
            key = payload if pure else None
        if not pure:
            memo.forget()
        else:
            with self.send_lock:
                known = memo.recall(key, name, args, kwargs)
                if known is not None and memo.report_due():
                    self.chan.send_framed(memo.take_report())
            if known is not None:
                return self._answer(known)
            if payload is None:
                payload = self._encode_call(name, args, kwargs)
        with self.send_lock:
            self.chan.send_raw(payload, before=memo.take_report())
        reply_bytes = self.chan.recv_frame()
        reply = self.protocol.decode_tuple(reply_bytes)
        if pure:
            reply = memo.remember(key, reply_bytes, reply)
        return self._answer(reply)

    def _encode_call(self, name: str, args: tuple, kwargs: dict) -> bytes:
        protocol = self.protocol
        try:
            return protocol.encode(("call", name, args, kwargs), self.max_call_bytes)
        except (protocol.EncodeError, RecursionError) as exc:
            raise self.errors["InvalidArgumentError"](f"{name}(): arguments cannot be sent: {exc}") from None

    def _answer(self, reply: tuple):
        if reply[0] == "ret":
            return reply[1]
        _tag, kind, cls_name, message = reply
        raise self._host_exception(kind, cls_name, message)

    def _host_exception(self, kind: str, cls_name: str, message: str) -> BaseException:
        if kind == "primitive":
            cls = self.errors.get(cls_name)
            if cls is None and cls_name.isidentifier() and not cls_name.startswith("_"):
                cls = type(
                    cls_name, (self.errors["PrimitiveError"],), {"__module__": "capstan.primitives.errors"}
                )
                self.errors[cls_name] = cls
            return (cls or self.errors["PrimitiveError"])(message)
        if kind == "builtin":
            cls = {"TypeError": TypeError, "NameError": NameError, "ValueError": ValueError}.get(
                cls_name, TypeError
            )
            return cls(message)
        return self.safe_modules.HostFunctionError(message)

    def run(self, spec: dict) -> dict:
        from capstan.sandbox import isolation

        buffer = self.safe_modules.OutputBuffer(spec.get("stdout_limit", 65536))
        try:
            compiled = compile(spec["code"], PROGRAM_FILENAME, "exec", dont_inherit=True)
        except Exception as exc:  # noqa: BLE001 - SyntaxError, ValueError (NUL), RecursionError, ...
            line = getattr(exc, "lineno", None)
            return _result(buffer, {}, {"kind": "syntax", "message": _describe(exc), "line": line})
        namespace = {
            "__builtins__": self.safe_modules.build_builtins(self.proxies, buffer),
            "__name__": "__main__",  # so an `if __name__ == "__main__":` guard runs
            "np": self.proxies["numpy"],
            **self.errors,
            "HostFunctionError": self.safe_modules.HostFunctionError,
        }
        for name in spec.get("host_functions", ()):
            namespace[name] = HostFunction(name, self.call_host)
        self.memo.pure = frozenset(spec.get("pure", ()))
        self.running.set()
        isolation.set_cpu_limit(spec.get("cpu_s", spec.get("timeout_s", 60)))
        error = None
        cpu_start = time.process_time()
        try:
            exec(compiled, namespace)  # noqa: S102 - the point of the sandbox
        except BaseException as exc:  # noqa: BLE001 - everything the program raises is reported
            error = self._classify(exc)
        cpu_s = time.process_time() - cpu_start
        values = {}
        for name in spec.get("return_names", ()):
            if name in namespace:
                try:
                    self.protocol.encode(namespace[name], spec.get("max_value_bytes", 4 << 20))
                    values[name] = namespace[name]
                except (self.protocol.EncodeError, RecursionError) as exc:
                    if error is None:
                        message = f"{name} cannot leave the sandbox: {exc}"
                        error = {"kind": "policy", "message": message, "line": None}
        return {**_result(buffer, values, error), "cpu_s": cpu_s}

    def _classify(self, exc: BaseException) -> dict:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == PROGRAM_FILENAME:
                line = tb.tb_lineno
            tb = tb.tb_next
        if isinstance(exc, MemoryError):
            kind = "memory"
        elif isinstance(exc, self.errors["PrimitiveError"]):
            kind = "primitive"
        elif isinstance(exc, self.safe_modules.HostFunctionError):
            kind = "crash"
        else:
            kind = "policy"
        return {"kind": kind, "message": _describe(exc), "line": line}


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc) if not isinstance(exc, SyntaxError) else exc.msg
        text = str.__str__(text) if isinstance(text, str) else "<unprintable>"
    except BaseException:  # noqa: BLE001 - a hostile __str__ may raise anything, SystemExit included
        text = "<unprintable>"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + " [...]"
    return text


def _result(buffer, values: dict, error: dict | None) -> dict:
    return {"values": values, "stdout": buffer.getvalue(), "error": error}


if __name__ == "__main__":  # pragma: no cover - started through isolation._BOOT
    main(int(sys.argv[1]), sys.argv[2])
