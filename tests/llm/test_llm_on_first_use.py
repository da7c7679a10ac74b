"""A provider started only when first asked: once, and a failed start fails the calls that need it."""

from __future__ import annotations

import pytest

from capstan.llm.base import CompletionRequest, Message, ProviderUnavailableError
from capstan.llm.on_first_use import OnFirstUse
from capstan.llm.scripted import ScriptedProvider

REQUEST = CompletionRequest((Message("user", "hi"),), max_tokens=8)


def test_it_starts_once_on_the_first_call_and_closes_what_it_started():
    starts, closed = [], []

    def start():
        starts.append(1)
        provider = ScriptedProvider(["one", "two"])
        provider.close = lambda: closed.append(1)  # type: ignore[method-assign]
        return provider

    llm = OnFirstUse(start, name="scripted?")
    assert starts == [] and llm.name == "scripted?" and not llm.can_prefill()
    assert llm.complete(REQUEST).text == "one" and llm.complete(REQUEST).text == "two"
    assert starts == [1] and llm.name == "scripted"
    llm.close()
    assert closed == [1]


def test_a_start_that_fails_fails_each_call_that_needs_it_without_trying_again():
    starts = []

    def start():
        starts.append(1)
        raise FileNotFoundError("no model at /models/x.gguf")

    llm = OnFirstUse(start, name="local")
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError, match="could not start .*no model at /models/x.gguf"):
            llm.complete(REQUEST)
    assert starts == [1]
    llm.close()  # nothing was started: nothing to close
