"""The one small interface every LLM provider implements.

LLMError                      base
├── ProviderUnavailableError  cannot reach the provider / model not loadable (aborts the run)
├── AuthenticationError       key missing or refused (aborts the run)
├── RateLimitError            still rate limited after retries (aborts the run)
├── LLMTimeoutError           no answer within the timeout after retries (aborts the run)
└── CassetteMissError         replay mode and no recorded answer for this request
"""

from __future__ import annotations

import abc
import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    """A chat request. Put the fixed part of a prompt (system text, few-shot examples) first
    and the per-command part last: providers cache the longest shared prefix."""

    messages: tuple[Message, ...]
    max_tokens: int = 512
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # How many leading messages are the fixed, cacheable prefix (0 = no hint).
    prefix_messages: int = 0
    # Sampling seed: two sampled requests that differ only here are different requests (and
    # cassette entries). None: the provider's own seed.
    seed: int | None = None

    def key(self, model: str) -> str:
        """Stable hash of model + prompt + settings, used by cassettes."""
        fields = asdict(self)
        if fields["seed"] is None:  # unseeded requests keep the keys they had before seeds existed
            del fields["seed"]
        blob = json.dumps({"model": model, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Completion:
    text: str
    model: str
    provider: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    finish_reason: str | None = None
    extra: dict = field(default_factory=dict)


class LLMError(Exception):
    pass


class ProviderUnavailableError(LLMError):
    pass


class AuthenticationError(LLMError):
    pass


class RateLimitError(LLMError):
    pass


class LLMTimeoutError(LLMError):
    pass


class CassetteMissError(LLMError):
    pass


class LLMProvider(abc.ABC):
    """`complete` is thread-safe; implementations serialize internally where they must."""

    name: str = "provider"
    model: str = ""

    @abc.abstractmethod
    def complete(self, request: CompletionRequest) -> Completion: ...

    def can_prefill(self) -> bool:
        """Whether `prefill` can ever read ahead (a model in this process)."""
        return False

    def prefill(self, request: CompletionRequest, cancel: threading.Event | None = None) -> bool:
        """Read `request`'s text ahead of time, up to the end of its last message (left open), so a
        later request that goes on from there pays only for the rest. Best effort and never in
        anyone's way: False when there is nothing to gain (a remote provider, a replay), the model
        is busy, a call comes in meanwhile, or `cancel` is set."""
        return False

    def close(self) -> None:  # noqa: B027 - an optional hook: most providers hold nothing to release
        pass
