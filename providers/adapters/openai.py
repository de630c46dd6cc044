"""OpenAI chat completions through the official SDK's client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import orjson

from providers.adapters import wire
from providers.adapters.base import (
    Adapter,
    ChatRequest,
    ChatResult,
    ProviderSettings,
    StreamDelta,
    UpstreamError,
    error_from_sdk,
)

SDK_ERRORS = (openai.OpenAIError, httpx2.HTTPError, ValueError)


class OpenAIAdapter(Adapter):
    kind = "openai"

    def __init__(self, settings: ProviderSettings, http_client: httpx2.AsyncClient) -> None:
        super().__init__(settings, http_client)
        self.client = openai.AsyncOpenAI(
            api_key=settings.api_key or self.missing_key(),
            base_url=settings.base_url,
            http_client=http_client,
            max_retries=0,  # NeuroRoute owns retries and fallbacks
            timeout=self.timeout,
        )

    def missing_key(self) -> str:
        raise UpstreamError(
            f"no API key configured for provider {self.settings.name!r}", kind="auth", status=401
        )

    def params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "messages": request.messages}
        for name in ("max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"):
            value = getattr(request, name)
            if value is not None:
                params[name] = value
        return params

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            response = await wire.post(self.client, "/chat/completions", self.params(request), stream=False)
            data = wire.json_body(response)
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc
        choices = data.get("choices") or []
        if not choices:
            raise UpstreamError("upstream returned no choices", retryable=True, kind="protocol")
        choice = choices[0]
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        return ChatResult(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            tool_calls=message.get("tool_calls") or [],
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        params = self.params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        try:
            response = await wire.post(self.client, "/chat/completions", params, stream=True)
            try:
                async for _event, data in wire.sse_events(response):
                    if data == b"[DONE]":
                        return
                    chunk = orjson.loads(data)
                    if "error" in chunk:
                        error = chunk["error"] or {}
                        raise UpstreamError(
                            f"upstream stream error: {error.get('message', 'unknown')}", retryable=True, kind="server"
                        )
                    delta = _delta(chunk)
                    if delta is not None:
                        yield delta
            finally:
                await response.aclose()
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc

    async def health(self) -> None:
        try:
            await self.client.models.list(timeout=min(5.0, self.settings.read_timeout))
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc


def _delta(chunk: dict[str, Any]) -> StreamDelta | None:
    usage = chunk.get("usage")
    choices = chunk.get("choices")
    if not choices:
        if usage:
            return StreamDelta(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))
        return None
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = delta.get("content") or ""
    tool_calls = delta.get("tool_calls") or None
    finish = choice.get("finish_reason")
    if not (text or tool_calls or finish or usage):
        return None
    result = StreamDelta(text=text, tool_calls=tool_calls, finish_reason=finish)
    if usage:
        result.prompt_tokens, result.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return result
