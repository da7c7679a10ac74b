"""Turn an openai / anthropic SDK exception into an `llm.base` error that names cause and fix."""

from __future__ import annotations

from capstan.llm.base import (
    AuthenticationError,
    LLMError,
    LLMTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from capstan.llm.retry import is_timeout, is_transport_error, status_of


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc)


def to_llm_error(
    exc: BaseException, *, provider: str, url: str, key_env: str, model: str, timeout_s: float, retries: int
) -> LLMError:
    status = status_of(exc)
    tried = f"after {retries} retries" if retries else "without retries"
    if is_timeout(exc):
        return LLMTimeoutError(
            f"{provider} at {url} gave no answer within {timeout_s:g} s ({tried}); raise "
            "CAPSTAN_LLM_TIMEOUT_S "
            "or check the server load"
        )
    if is_transport_error(exc):
        return ProviderUnavailableError(
            f"cannot reach {provider} at {url} ({tried}): {exc}; check CAPSTAN_LLM_BASE_URL and that the "
            "server is running"
        )
    if status in (401, 403):
        return AuthenticationError(
            f"{provider} at {url} refused the API key (HTTP {status}: {_detail(exc)}); set a valid key in "
            f"{key_env}"
        )
    if status == 429:
        return RateLimitError(
            f"{provider} still rate limited {tried} (HTTP 429: {_detail(exc)}); wait, lower the request rate "
            "or raise CAPSTAN_LLM_MAX_RETRIES"
        )
    if status == 404:
        return LLMError(
            f"{provider} at {url} does not know model {model!r} (HTTP 404: {_detail(exc)}); set "
            "CAPSTAN_LLM_MODEL to a model the server serves"
        )
    if status is not None and status >= 500:
        return ProviderUnavailableError(
            f"{provider} at {url} failed with HTTP {status} {tried}: {_detail(exc)}; try again later"
        )
    if status is not None:
        return LLMError(f"{provider} at {url} rejected the request (HTTP {status}): {_detail(exc)}")
    return LLMError(f"{provider} call failed: {type(exc).__name__}: {exc}")
