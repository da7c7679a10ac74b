"""Fixtures for the service tests: a real sandbox (shared), a Service with a scripted LLM, a client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.config import Settings
from app.service import Service
from llm.scripted import ScriptedProvider


@pytest.fixture(scope="session")
def shared_sandbox():
    from sandbox import Sandbox

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
        c = TestClient(create_app(service), **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
