"""A TCP proxy on loopback that can cut the line: the network failing between a service and its robot.

    proxy = LoopbackProxy(agent_port).start()   # CAPSTAN_ROBOTS=lab=proxy.url
    proxy.cut()       # every connection closed at once, new ones refused (nothing listens)
    proxy.restore()   # listening again on the same port

Bytes are copied as they come, in both directions, one thread each way per connection; nothing is
parsed, so whatever protocol runs over it (HTTP keep-alive, heartbeats) sees only the cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading

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
