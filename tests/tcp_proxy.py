"""A TCP proxy on loopback that a test can cut like a pulled cable."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class CuttableProxy:
    """Forwards every connection made to `self.url` to `upstream` (an http://host:port URL) until
    cut(), which closes every connection through it and refuses new ones (nothing listens any more)."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() wakes up to see a cut
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._cut = threading.Event()
        self._start(self._accept)

    def cut(self) -> None:
        with self._lock:
            if self._cut.is_set():
                return
            self._cut.set()
            self._listener.close()
            for sock in self._sockets:
                _hang_up(sock)  # wakes the pumps blocked in recv()

    def close(self) -> None:
        self.cut()
        for t in list(self._threads):
            t.join(5)

    def _start(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                down, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed by cut()
                return
            down.settimeout(None)
            try:
                up = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            with self._lock:
                if self._cut.is_set():
                    down.close()
                    up.close()
                    return
                self._sockets += [down, up]
                self.connections += 1
            self._start(self._pump, down, up)
            self._start(self._pump, up, down)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:  # one side gone: the connection is over both ways
            for sock in (src, dst):
                _hang_up(sock)


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
