"""Call the chosen model, retrying and falling back as the failure allows.

Retries are for retryable failures only (UpstreamError.retryable), with
exponential backoff and full jitter, honouring Retry-After, and bounded by
the request's deadline. When a model gives up (retries spent, or a
non-retryable auth, not-found or context-length error), the next model in
its fallback chain that fits the request is tried. An upstream 400/422 is
the request's own fault and is reported at once. A stream is never retried
once its first byte has reached the client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from providers.adapters.base import ChatRequest, ChatResult, StreamDelta, UpstreamError
from providers.clients import adapter_for
from routing.breaker import breaker
from routing.decision import Decision
from routing.gateway_config import ModelInfo, in_db_thread
from routing.latency import latency_stats

logger = logging.getLogger("neuroroute.execution")

MAX_RETRIES = 2
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0


@dataclass
class Attempt:
    model: str
    provider: str
    duration_ms: float
    error: str = ""
    kind: str = ""
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "duration_ms": round(self.duration_ms, 2),
            "ok": not self.error,
            **({"error": self.error, "kind": self.kind, "status": self.status} if self.error else {}),
        }


@dataclass
class Execution:
    """The record of one request's attempts, shared by the complete and stream paths."""

    decision: Decision
    deadline: float  # time.monotonic() value
    attempts: list[Attempt] = field(default_factory=list)
    model: ModelInfo | None = None  # the model that answered (or last tried)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def fell_back(self) -> bool:
        return self.model is not None and self.decision.model is not None and self.model.key != self.decision.model.key

    def fallback_note(self) -> str:
        if not self.fell_back:
            return ""
        failed = [a for a in self.attempts if a.error and a.model == self.decision.model.key]
        why = failed[-1].error if failed else "unavailable"
        return f"answered by {self.model.key} after {self.decision.model.key} failed: {why}"


def _backoff(attempt: int, error: UpstreamError) -> float:
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def _note_key_failure(model: ModelInfo, error: UpstreamError) -> None:
    from providers.models import Provider
    from routing.models import ConfigRevision

    if Provider.objects.filter(pk=model.provider_id).mark_key_failing(error.message):
        ConfigRevision.bump()  # so the next success knows there is a failure to clear


# Provider id -> when this worker last recorded its stored key's use.
_key_used_at: dict[int, float] = {}


def _touch_stored_key(provider_id: int) -> None:
    from django.utils import timezone

    from keys.models import ProviderAPIKey

    ProviderAPIKey.objects.filter(provider_id=provider_id, is_active=True).update(last_used_at=timezone.now())


async def _note_success(model: ModelInfo) -> None:
    if model.key_failing:
        await in_db_thread(_clear_key_failure, model)
    # "Last used" is for operators spotting idle keys: once a minute per worker is precise enough.
    if model.key_stored and time.monotonic() - _key_used_at.get(model.provider_id, float("-inf")) > 60:
        _key_used_at[model.provider_id] = time.monotonic()
        await in_db_thread(_touch_stored_key, model.provider_id)


def _clear_key_failure(model: ModelInfo) -> None:
    from providers.models import Provider
    from routing.models import ConfigRevision

    if Provider.objects.filter(pk=model.provider_id).clear_key_failure():
        ConfigRevision.bump()


async def _record_failure(execution: Execution, model: ModelInfo, error: UpstreamError, started: float) -> None:
    execution.attempts.append(
        Attempt(model.key, model.provider.name, (time.monotonic() - started) * 1000, error.message, error.kind, error.status)
    )
    if error.retryable:
        breaker.failure(model.provider.name)
    if error.auth_failure:
        await in_db_thread(_note_key_failure, model, error)
    logger.warning(
        "upstream attempt failed",
        extra={"model": model.key, "provider": model.provider.name, "kind": error.kind, "status": error.status},
    )


def _final_error(execution: Execution, last: UpstreamError | None) -> UpstreamError:
    if last is None:
        names = ", ".join(m.key for m in execution.decision.fallback_chain())
        return UpstreamError(f"no provider available for {names} (circuits open)", kind="circuit_open")
    return last


async def _run_attempts(
    execution: Execution,
    request_for: Callable[[ModelInfo], ChatRequest],
    call: Callable[[ModelInfo, ChatRequest], Any],
) -> Any:
    last_error: UpstreamError | None = None
    for model in execution.decision.fallback_chain():
        if not breaker.allow(model.provider.name):
            execution.attempts.append(Attempt(model.key, model.provider.name, 0.0, "circuit open", "circuit_open"))
            continue
        execution.model = model
        for attempt in range(MAX_RETRIES + 1):
            remaining = execution.remaining()
            if remaining <= 0:
                raise UpstreamError("request deadline exceeded", kind="timeout", retryable=False)
            started = time.monotonic()
            try:
                # asyncio.timeout, unlike wait_for, runs the call in this task: no extra task per attempt.
                async with asyncio.timeout(remaining):
                    result = await call(model, request_for(model))
            except TimeoutError:
                error = UpstreamError("request deadline exceeded", kind="timeout", retryable=False)
                await _record_failure(execution, model, error, started)
                raise error from None
            except UpstreamError as error:
                last_error = error
                await _record_failure(execution, model, error, started)
                if error.kind == "bad_request":
                    # The request itself was rejected: another model would most
                    # likely reject it too, and the client needs to know.
                    raise error from None
                if not error.retryable or attempt == MAX_RETRIES:
                    break
                delay = _backoff(attempt, error)
                if delay >= execution.remaining():
                    break  # no time to wait: try the next model instead
                await asyncio.sleep(delay)
                continue
            duration = (time.monotonic() - started) * 1000
            execution.attempts.append(Attempt(model.key, model.provider.name, duration))
            breaker.success(model.provider.name)
            latency_stats.record(model.key, duration)
            await _note_success(model)
            return result
    raise _final_error(execution, last_error)


async def complete(execution: Execution, request_for: Callable[[ModelInfo], ChatRequest]) -> ChatResult:
    async def call(model: ModelInfo, request: ChatRequest) -> ChatResult:
        return await adapter_for(model.provider).complete(request)

    return await _run_attempts(execution, request_for, call)


async def stream(
    execution: Execution, request_for: Callable[[ModelInfo], ChatRequest]
) -> AsyncIterator[StreamDelta]:
    """Yield deltas; failures before the first delta retry or fall back, later ones raise."""

    async def open_stream(model: ModelInfo, request: ChatRequest):
        iterator = adapter_for(model.provider).stream(request).__aiter__()
        # Pull the first delta inside the retry loop: a failure here is
        # still invisible to the client.
        first = await iterator.__anext__()
        return iterator, first

    try:
        iterator, first = await _run_attempts(execution, request_for, open_stream)
    except StopAsyncIteration:
        return
    yield first
    try:
        async for delta in iterator:
            if execution.remaining() <= 0:
                raise UpstreamError("request deadline exceeded", kind="timeout")
            yield delta
    finally:
        await iterator.aclose()
