"""Shared fixtures (kept small): a scripted LLM reply helper and a free loopback port."""

from __future__ import annotations

import socket

import pytest


def fenced(code: str) -> str:
    """A model answer holding `code` in a Python fence, as the real model writes it."""
    return f"```python\n{code.strip()}\n```"


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
