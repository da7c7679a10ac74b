"""franky-sim for the Franka tests: one MuJoCo child process per module, and a backend on it."""

from __future__ import annotations

import pytest

pytest.importorskip("franky", reason="the Franka tests need: pip install 'capstan[franka]'")


@pytest.fixture(scope="module")
def blocks() -> dict:
    """The blocks franky-sim puts on the table (override per module)."""
    return {"red block": {"color": "red", "position": [0.0, 0.5]}}


@pytest.fixture(scope="module")
def franky_sim(blocks):
    from capstan.franka import FrankySim

    with FrankySim(blocks) as sim:
        yield sim


@pytest.fixture(scope="module")
def franka(franky_sim, blocks):
    """A FrankaBackend on franky-sim, its declared scene the blocks as they lie."""
    from capstan.franka import FrankaBackend

    backend = FrankaBackend.connect(franky_sim.hostname, max_speed=0.5)
    yield backend
    backend.close()


@pytest.fixture
def robot(franka, blocks):
    """The module's backend, resumed, its scene declared as the blocks lie now."""
    franka.resume()
    return franka
