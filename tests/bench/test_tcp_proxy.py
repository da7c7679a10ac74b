"""The loopback proxy `capstan bench robot` and the full-path tests cut a robot's line with: bytes
pass both ways until cut(); then open connections end and new ones are refused until restore()."""

from __future__ import annotations

import socket
import threading

import pytest

from capstan.bench.tcp_proxy import LoopbackProxy


@pytest.fixture
def echo_port():
    """An echo server on loopback: what it reads, it writes back."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_bytes_pass_until_the_cut_then_connections_are_refused_until_restored(echo_port):
    with LoopbackProxy(echo_port) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        client.sendall(b"ping")
        assert client.recv(16) == b"ping"
        proxy.cut()
        assert not proxy.listening
        assert client.recv(16) == b""  # the open connection ended
        client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        proxy.restore()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as again:
            again.sendall(b"pong")
            assert again.recv(16) == b"pong"
