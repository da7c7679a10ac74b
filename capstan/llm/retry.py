"""Retries with exponential backoff and jitter for cloud LLM calls.

The SDK clients are built with `max_retries=0`; this loop owns retrying so the behaviour is
documented and testable. Retried: HTTP 429, 408, 409, 5xx (incl. Anthropic's 529 "overloaded"),
connection errors and timeouts. A `retry-after` / `retry-after-ms` header is honoured (capped at
`max_delay_s`). Delay before retry n (0-based) without a header: uniform in [d/2, d] where
d = min(max_delay_s, base_delay_s * 2**n).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return max(0.0, min(self.max_delay_s, retry_after_s))
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return self.rng.uniform(ceiling / 2, ceiling)


def status_of(exc: BaseException) -> int | None:
    """HTTP status of an SDK error (openai and anthropic share the shape), else None."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_transport_error(exc: BaseException) -> bool:
    """Connection failures and timeouts of either SDK (APIConnectionError and its APITimeoutError)."""
    return type(exc).__name__ in {"APIConnectionError", "APITimeoutError"} or any(
        c.__name__ in {"APIConnectionError", "APITimeoutError"} for c in type(exc).__mro__
    )


def is_timeout(exc: BaseException) -> bool:
    return any(c.__name__ == "APITimeoutError" for c in type(exc).__mro__)


def is_retryable(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS or status >= 500
    return is_transport_error(exc)


def retry_after_s(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000.0
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None
    return None


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy) -> tuple[T, int]:
    """Run `fn`, retrying retryable SDK errors; returns (result, retries used). Re-raises the last error."""
    attempt = 0
    while True:
        try:
            return fn(), attempt
        except Exception as exc:
            if attempt >= policy.max_retries or not is_retryable(exc):
                raise
            policy.sleep(policy.backoff(attempt, retry_after_s(exc)))
            attempt += 1
