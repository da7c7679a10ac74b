"""Fixtures for the service tests: a real sandbox (shared), a Service with a scripted LLM, a client."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from capstan.llm.scripted import ScriptedProvider
from capstan.service.api import create_app
from capstan.service.config import Settings
from capstan.service.service import Service


@pytest.fixture(scope="session")
def shared_sandbox():
    from capstan.sandbox import Sandbox

    sb = Sandbox(pool_size=2)
    yield sb
    sb.close()


@pytest.fixture
def make_service(tmp_path, shared_sandbox):
    made: list[Service] = []

    def make(replies=(), llm=None, **overrides) -> Service:
        overrides.setdefault("media", False)
        settings = Settings.from_env({}, data_dir=tmp_path / "data", **overrides)
        svc = Service(settings, llm=llm or ScriptedProvider(list(replies)), sandbox=shared_sandbox)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()


@pytest.fixture
def client_for():
    clients: list[TestClient] = []

    def make(service: Service, **kw) -> TestClient:
        kw.setdefault("base_url", "http://127.0.0.1")  # a loopback name, as a tokenless service requires
        c = TestClient(create_app(service), **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster on a Unix socket (Debian's postgresql, run as user postgres)."""
    import pwd
    import shutil
    import subprocess

    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's postgresql binaries and root (to run them as user postgres)")
    pytest.importorskip("psycopg")
    try:
        pg_uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("no postgres user")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="capstan-pg-"))  # pytest's tmp dirs are closed to other users
    os.chown(base, pg_uid, -1)
    import socket

    with socket.socket() as sock:  # a free port number (the server listens only on its Unix socket)
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(PG_BIN / "initdb"), "-D", f"{base}/data", "-A", "trust", "-U", "capstan"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_pg,
            str(PG_BIN / "pg_ctl"),
            "-D",
            f"{base}/data",
            "-w",
            "-l",
            f"{base}/log",
            "-o",
            f"-k {base} -c listen_addresses='' -p {port}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    yield f"postgresql://capstan@/{{db}}?host={base}&port={port}"
    subprocess.run(
        [*as_pg, str(PG_BIN / "pg_ctl"), "-D", f"{base}/data", "-m", "immediate", "stop"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the throwaway cluster."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_server.format(db="postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return postgres_server.format(db=name)


@pytest.fixture
def serve(free_port):
    """serve(service) -> base URL of a real uvicorn server on loopback, in a thread, stopped after the "
    "test."""
    import threading
    import time

    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(service: Service) -> str:
        server = uvicorn.Server(
            uvicorn.Config(create_app(service), host="127.0.0.1", port=free_port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.time() + 20
        while not server.started:
            assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{free_port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


class Agent:
    """A robot agent (app.robot_agent) on a free loopback port, in a thread, until stop()."""

    def __init__(self, app):
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "robot agent did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def robot_agent():
    """robot_agent(scene=..., token=None, app=None, heartbeat_ms=...) -> a running Agent; a PyBullet
    world unless `app` (any make_agent_app) is given. Stopped after the test."""
    from capstan.service.robot_agent import sim_agent_app
    from tests.servers import RELAXED_HEARTBEAT_MS

    started: list[Agent] = []

    def start(scene=None, token=None, app=None, heartbeat_ms=None) -> Agent:
        agent = Agent(
            app
            if app is not None
            else sim_agent_app(
                scene or {"objects": ["red block", "blue bowl"], "seed": 7},
                token=token,
                heartbeat_ms=heartbeat_ms or RELAXED_HEARTBEAT_MS,
            )
        )
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
        world = getattr(agent.app.state, "world", None)
        if world is not None:
            world.close()
