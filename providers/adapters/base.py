"""The interface every provider adapter implements, and the types it speaks.

Requests and results are provider-neutral and follow OpenAI's chat format
(the lingua franca of LLM APIs); adapters translate at the edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx2
import openai

# Statuses that mean "try again later": timeouts, conflicts, rate limits, outages.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class UpstreamError(Exception):
    """The one error type for upstream failures.

    `retryable` tells the router whether another attempt (or another model)
    may succeed; routing never inspects messages to decide.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        kind: str = "upstream",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.kind = kind
        self.retry_after = retry_after

    @property
    def auth_failure(self) -> bool:
        return self.status in (401, 403)

    def client_status(self) -> int:
        """The HTTP status NeuroRoute answers with when this is the final error."""
        if self.kind == "timeout":
            return 504
        if self.kind in ("rate_limit", "unavailable", "circuit_open"):
            return 503
        if self.kind == "bad_request" and self.status in (400, 404, 413, 422):
            return 400 if self.status != 413 else 413
        return 502

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind}, status={self.status}, retryable={self.retryable}, {self.message!r})"


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds form)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    return None


def error_for_status(status: int, message: str, headers: Any = None) -> UpstreamError:
    lowered = message.lower()
    if status == 429:
        kind = "rate_limit"
    elif status in (401, 403):
        kind = "auth"
    elif status in (400, 404, 413, 422):
        kind = "context_length" if "context" in lowered and "length" in lowered else "bad_request"
    elif status in (408, 504):
        kind = "timeout"
    elif status in (503, 529):
        kind = "unavailable"
    else:
        kind = "server"
    return UpstreamError(
        f"upstream returned {status}: {message}"[:500],
        retryable=status in RETRYABLE_STATUSES,
        status=status,
        kind=kind,
        retry_after=parse_retry_after(headers),
    )


def error_from_sdk(exc: BaseException) -> UpstreamError:
    """Translate an OpenAI or Anthropic SDK exception (same shapes) into ours."""
    import anthropic

    status_errors = (openai.APIStatusError, anthropic.APIStatusError)
    timeout_errors = (openai.APITimeoutError, anthropic.APITimeoutError, httpx2.TimeoutException, asyncio.TimeoutError)
    connect_errors = (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError)
    if isinstance(exc, status_errors):
        body = getattr(exc, "body", None)
        message = str(getattr(exc, "message", exc))
        if isinstance(body, dict):
            detail = body.get("error", body)
            if isinstance(detail, dict) and detail.get("message"):
                message = str(detail["message"])
        return error_for_status(exc.status_code, message, exc.response.headers)
    # The aiohttp transport reports refused and reset connections as connect
    # timeouts; either way the request never reached the model.
    if isinstance(exc.__cause__, httpx2.ConnectTimeout) or isinstance(exc, httpx2.ConnectTimeout):
        return UpstreamError(f"could not connect to upstream: {exc.__cause__ or exc}"[:300], retryable=True, kind="connect")
    if isinstance(exc, timeout_errors):
        return UpstreamError("upstream timed out", retryable=True, kind="timeout")
    if isinstance(exc, connect_errors):
        return UpstreamError(f"could not reach upstream: {exc}"[:300], retryable=True, kind="connect")
    if isinstance(exc, (openai.APIResponseValidationError, anthropic.APIResponseValidationError, ValueError)):
        return UpstreamError(f"malformed upstream response: {exc}"[:300], retryable=True, kind="protocol")
    return UpstreamError(f"upstream failure: {type(exc).__name__}: {exc}"[:300], retryable=True, kind="protocol")


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None


@dataclass(slots=True)
class ChatResult:
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class StreamDelta:
    """One piece of a streamed answer, in OpenAI's delta vocabulary."""

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    name: str
    kind: str
    base_url: str
    api_key: str
    connect_timeout: float
    read_timeout: float


class Adapter:
    """Base class: one subclass per provider kind, each a thin SDK wrapper."""

    kind: ClassVar[str]

    def __init__(self, settings: ProviderSettings, http_client: httpx2.AsyncClient) -> None:
        self.settings = settings
        self.http_client = http_client

    @property
    def timeout(self) -> openai.Timeout:
        return openai.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout)

    async def complete(self, request: ChatRequest) -> ChatResult:
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        raise NotImplementedError

    async def health(self) -> None:
        """Raise UpstreamError unless the provider answers."""
        raise NotImplementedError
