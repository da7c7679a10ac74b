"""Fixtures for the lmp tests: the real sim world, the real policy API, the real sandbox, and the
scripted LLM provider (the one test double, at the LLM boundary)."""

from __future__ import annotations

import pytest

from capstan.llm.scripted import ScriptedProvider


@pytest.fixture
def world():
    from capstan.sim import World

    w = World({"objects": ["red block", "blue block", "yellow block", "green bowl", "blue bowl"], "seed": 3})
    yield w
    w.close()


@pytest.fixture
def api(world):
    from capstan.primitives.api import PolicyAPI

    events: list[tuple[str, dict]] = []
    a = PolicyAPI(world, on_event=lambda kind, payload: events.append((kind, payload)))
    a.test_events = events
    return a


@pytest.fixture(scope="session")
def sandbox():
    from capstan.sandbox import Sandbox

    sb = Sandbox(pool_size=1)
    yield sb
    sb.close()


@pytest.fixture
def scripted():
    def make(*replies):
        return ScriptedProvider(list(replies))

    return make
