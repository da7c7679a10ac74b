"""The loopback proxy `capstan bench robot` and the full-path tests cut a robot's line with: bytes
pass both ways until cut(); then open connections end and new ones are refused until restore().
The same on the caller's threads (LoopbackProxy) and in a child process (ProxyProcess)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from capstan.bench.tcp_proxy import LoopbackProxy, ProxyProcess


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


@pytest.mark.parametrize("proxy_class", [LoopbackProxy, ProxyProcess])
def test_bytes_pass_until_the_cut_then_connections_are_refused_until_restored(echo_port, proxy_class):
    with proxy_class(echo_port) as proxy:
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


@pytest.mark.parametrize(("proxy_class", "carries"), [(ProxyProcess, True), (LoopbackProxy, False)])
def test_only_the_proxy_process_carries_bytes_while_this_interpreter_is_held(proxy_class, carries):
    """A C call that holds this process's GIL (PyBullet's first world build does, for ~0.3 s) stops
    every thread here, a LoopbackProxy's too, but not ProxyProcess's child: pings between two other
    processes keep crossing the line meanwhile."""
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert echo.stdout is not None
        with proxy_class(int(echo.stdout.readline())) as proxy:
            pinger = subprocess.Popen(  # noqa: S603 - the client, in a third process
                [sys.executable, "-c", PINGER, str(proxy.port)], stdout=subprocess.PIPE, text=True
            )
            assert pinger.stdout is not None
            pinger.stdout.readline()  # its first echo came back: the line is up
            held = _hold_the_gil(0.6)
            answers = [float(t) for t in pinger.communicate(timeout=30)[0].split()]
        # the first and last 0.1 s: pings already on their way, and the threads here waking up
        inside = [t for t in answers if held[0] + 0.1 < t < held[1] - 0.1]
        assert bool(inside) is carries, (held, answers)
    finally:
        echo.kill()
        echo.communicate(timeout=5)  # reaps it and closes its pipe


ECHO_SERVER = """
import socket, threading
def serve(conn):
    while data := conn.recv(4096):
        conn.sendall(data)
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""

# pings every 10 ms for 3 s through the port in argv; prints when each echo came back
PINGER = """
import socket, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
sock.sendall(b"p"); sock.recv(1)
print("up", flush=True)
end = time.monotonic() + 3
while time.monotonic() < end:
    sock.sendall(b"p"); sock.recv(1)
    print(time.monotonic(), flush=True)
    time.sleep(0.01)
"""


def _hold_the_gil(seconds: float) -> tuple[float, float]:
    """Hold the GIL in one C call of at least `seconds` (a regular expression's backtracking never
    releases it); returns when the call began and ended (time.monotonic())."""
    import re

    n = 16
    while True:
        began = time.monotonic()
        re.match(r"(a+)+$", "a" * n + "b")
        ended = time.monotonic()
        if ended - began >= seconds:
            return began, ended
        n += 1
