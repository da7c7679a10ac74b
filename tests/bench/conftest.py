"""A module-wide sandbox for the checker tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sandbox():
    from capstan.sandbox import Sandbox

    sb = Sandbox(pool_size=1)
    yield sb
    sb.close()
