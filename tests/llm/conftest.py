"""Fixtures for the llm tests."""

from __future__ import annotations

import random

import pytest

from capstan.llm.retry import RetryPolicy


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(
        max_retries=2, base_delay_s=0.5, max_delay_s=8.0, sleep=sleeps.append, rng=random.Random(7)
    )
