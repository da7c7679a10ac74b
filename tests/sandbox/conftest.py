"""Shared sandboxes for the sandbox tests (workers are expensive: start each kind once)."""

from __future__ import annotations

import pytest

from capstan.sandbox import Sandbox


@pytest.fixture(scope="session")
def sb():
    box = Sandbox(pool_size=2, max_workers=6)
    assert box.wait_ready(1, 60), box.isolation
    yield box
    box.close()


@pytest.fixture(scope="session")
def unsafe_sb():
    """Python layers switched off: only the OS layer stands between the payload and the host."""
    box = Sandbox(pool_size=1, max_workers=3, _unsafe_skip_static_check=True)
    assert box.wait_ready(1, 60), box.isolation
    yield box
    box.close()


@pytest.fixture(scope="session", params=["bwrap", "landlock"])
def os_sb(request):
    """The Python layers off, under each OS boundary in turn: the boundary alone must hold."""
    box = Sandbox(pool_size=1, max_workers=3, isolation=request.param, _unsafe_skip_static_check=True)
    assert box.wait_ready(1, 60), box.isolation
    assert box.isolation["mode"] == request.param
    yield box
    box.close()
