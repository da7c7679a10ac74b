"""A TCP proxy on loopback that can cut the line: the network failing between a service and its robot.

    proxy = ProxyProcess(agent_port).start()    # CAPSTAN_ROBOTS=lab=proxy.url
    proxy.cut()       # every connection closed at once, new ones refused (nothing listens)
    proxy.restore()   # listening again on the same port

Bytes are copied as they come, in both directions, one thread each way per connection; nothing is
parsed, so whatever protocol runs over it (HTTP keep-alive, heartbeats) sees only the cut.

`ProxyProcess` runs the proxy in a child process (`python -m capstan.bench.tcp_proxy PORT`), so the
line is as independent of the caller's interpreter as a real network: a service that holds the GIL
in a long C call (PyBullet builds its first world in one of ~0.3 s) delays none of the heartbeats
its own heartbeat process sends across the line. `LoopbackProxy` is the same proxy on threads of
the calling process, for a line whose timing does not matter.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import threading
from typing import IO

ACCEPT_POLL_S = 0.05  # how often the accepting thread looks whether it should stop
CHUNK = 65536


class LoopbackProxy:
    """Forwards 127.0.0.1:`port` (chosen at start) to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.host, self.target_port = host, target_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        """False between cut() and restore()."""
        return self._listener is not None

    def start(self) -> LoopbackProxy:
        if self._listener is not None:
            raise RuntimeError("the proxy is already listening")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restore() rebinds the same port
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(ACCEPT_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._open.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()
        return self

    def cut(self) -> None:
        """Close every connection and stop listening: a client's next connect is refused."""
        self._open.clear()
        listener, self._listener = self._listener, None
        if self._acceptor is not None:
            self._acceptor.join(5)
            self._acceptor = None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Listen again on the same port."""
        self.start()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._open.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if not self._open.is_set():  # cut while this one was connecting
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        # one side ended: end the other, so neither end waits on a half-open connection
        with self._lock:
            self._sockets.discard(src)
            self._sockets.discard(dst)
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class ProxyProcess:
    """`LoopbackProxy` in a child process of its own, driven over its stdin: the same interface."""

    START_S = 30.0

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.host, self.target_port = host, target_port
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._listening = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        """False between cut() and restore()."""
        return self._listening

    def start(self) -> ProxyProcess:
        if self._proc is not None:
            raise RuntimeError("the proxy process is already running")
        from capstan.bench.robot_rig import environment_with_source

        command = [sys.executable, "-m", "capstan.bench.tcp_proxy", str(self.target_port)]
        self._proc = subprocess.Popen(  # noqa: S603 - this module, run by this interpreter
            [*command, "--host", self.host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment_with_source(),  # the child runs this very code
        )
        reply = self._reply()
        if not reply.startswith("listening "):
            self.close()
            raise RuntimeError(f"the proxy process did not start: {reply!r}")
        self.port = int(reply.split()[1])
        self._listening = True
        return self

    def cut(self) -> None:
        """Close every connection and stop listening: a client's next connect is refused."""
        self._command("cut")
        self._listening = False

    def restore(self) -> None:
        """Listen again on the same port."""
        self._command("restore")
        self._listening = True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        self._listening = False
        if proc is None:
            return
        for pipe in filter(None, (proc.stdin, proc.stdout)):  # stdin's end is the child's cue to leave
            with contextlib.suppress(OSError, ValueError):
                pipe.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, word: str) -> None:
        stdin, _ = self._pipes()
        stdin.write(word + "\n")
        stdin.flush()
        reply = self._reply()
        if reply != f"ok {word}":
            raise RuntimeError(f"the proxy process answered {word!r} with {reply!r}")

    def _reply(self) -> str:
        _, stdout = self._pipes()
        line = stdout.readline().strip()
        return line or f"nothing (exit code {self._proc.poll() if self._proc else None})"

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError("the proxy process is not running")
        return proc.stdin, proc.stdout


def main(argv: list[str] | None = None) -> int:
    """The child of ProxyProcess: prints `listening PORT`, then obeys `cut` and `restore` lines on
    stdin (each answered `ok WORD`) until stdin ends."""
    parser = argparse.ArgumentParser(prog="python -m capstan.bench.tcp_proxy", description=main.__doc__)
    parser.add_argument("target_port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    proxy = LoopbackProxy(args.target_port, args.host).start()
    print(f"listening {proxy.port}", flush=True)
    actions = {"cut": proxy.cut, "restore": proxy.restore}
    try:
        for line in sys.stdin:
            word = line.strip()
            if word not in actions:
                print(f"unknown command {word!r}", flush=True)
                continue
            actions[word]()
            print(f"ok {word}", flush=True)
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
