"""OpenAI chat completions through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai

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
            response = await self.client.chat.completions.create(**self.params(request))
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc
        if not response.choices:
            raise UpstreamError("upstream returned no choices", retryable=True, kind="protocol")
        choice = response.choices[0]
        usage = response.usage
        return ChatResult(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            tool_calls=[call.model_dump() for call in choice.message.tool_calls or []],
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        params = self.params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        try:
            stream = await self.client.chat.completions.create(**params)
            try:
                async for chunk in stream:
                    usage = chunk.usage
                    if usage is not None:
                        yield StreamDelta(
                            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
                        )
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta
                    tool_calls = (
                        [call.model_dump(exclude_none=True) for call in delta.tool_calls]
                        if delta and delta.tool_calls
                        else None
                    )
                    text = (delta.content or "") if delta else ""
                    if text or tool_calls or choice.finish_reason:
                        yield StreamDelta(text=text, tool_calls=tool_calls, finish_reason=choice.finish_reason)
            finally:
                await stream.close()
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc

    async def health(self) -> None:
        try:
            await self.client.models.list(timeout=min(5.0, self.settings.read_timeout))
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc
