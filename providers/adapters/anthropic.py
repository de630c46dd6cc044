"""Anthropic messages through the official SDK, translated to and from OpenAI's shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
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

SDK_ERRORS = (anthropic.AnthropicError, httpx2.HTTPError, ValueError)
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI clients often omit it.
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content or []:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part))
    return blocks


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def to_anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split OpenAI-style messages into Anthropic's system string and turns."""
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(message.get("content")))
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": _text_of(message.get("content")),
            }
            if turns and turns[-1]["role"] == "user":
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
            continue
        blocks = _content_blocks(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except json.JSONDecodeError:
                arguments = {}
            blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": arguments})
        turn_role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)  # Anthropic wants alternating turns
        else:
            turns.append({"role": turn_role, "content": blocks})
    system = "\n\n".join(part for part in system_parts if part) or None
    return system, turns


def to_anthropic_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        function = tool.get("function", tool)
        converted.append(
            {
                "name": function.get("name", ""),
                "description": function.get("description", ""),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return converted


def to_anthropic_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice in (None, "auto"):
        return {"type": "auto"} if choice else None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return {"type": "tool", "name": name}
    return None


class AnthropicAdapter(Adapter):
    kind = "anthropic"

    def __init__(self, settings: ProviderSettings, http_client: httpx2.AsyncClient) -> None:
        super().__init__(settings, http_client)
        if not settings.api_key:
            raise UpstreamError(f"no API key configured for provider {settings.name!r}", kind="auth", status=401)
        self.client = anthropic.AsyncAnthropic(
            api_key=settings.api_key,
            base_url=settings.base_url,
            http_client=http_client,
            max_retries=0,  # NeuroRoute owns retries and fallbacks
            timeout=self.timeout,
        )

    def params(self, request: ChatRequest) -> dict[str, Any]:
        system, turns = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {
            "model": request.model,
            "messages": turns,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            params["system"] = system
        if request.temperature is not None:
            params["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop_sequences"] = request.stop
        if request.tools:
            params["tools"] = to_anthropic_tools(request.tools)
            tool_choice = to_anthropic_tool_choice(request.tool_choice)
            if tool_choice:
                params["tool_choice"] = tool_choice
        return params

    async def complete(self, request: ChatRequest) -> ChatResult:
        try:
            response = await wire.post(self.client, "/v1/messages", self.params(request), stream=False)
            message = wire.json_body(response)
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc
        texts, calls = [], []
        for block in message.get("content") or []:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                calls.append(
                    {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": json.dumps(block.get("input") or {})},
                    }
                )
        usage = message.get("usage") or {}
        return ChatResult(
            text="".join(texts),
            finish_reason=STOP_REASONS.get(message.get("stop_reason") or "end_turn", "stop"),
            prompt_tokens=usage.get("input_tokens") or 0,
            completion_tokens=usage.get("output_tokens") or 0,
            tool_calls=calls,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        params = self.params(request)
        params["stream"] = True
        tool_index: dict[int, int] = {}  # Anthropic content-block index -> OpenAI tool_call index
        try:
            response = await wire.post(self.client, "/v1/messages", params, stream=True)
            try:
                async for _event, data in wire.sse_events(response):
                    event = orjson.loads(data)
                    delta = _translate_event(event, tool_index)
                    if delta is not None:
                        yield delta
                    if event.get("type") == "message_stop":
                        return
            finally:
                await response.aclose()
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc

    async def health(self) -> None:
        try:
            await self.client.models.list(timeout=min(5.0, self.settings.read_timeout))
        except SDK_ERRORS as exc:
            raise error_from_sdk(exc) from exc


def _translate_event(event: dict[str, Any], tool_index: dict[int, int]) -> StreamDelta | None:
    """One Anthropic stream event as an OpenAI-vocabulary delta (or None)."""
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            return StreamDelta(text=delta.get("text", ""))
        if delta.get("type") == "input_json_delta" and event.get("index") in tool_index:
            return StreamDelta(
                tool_calls=[{"index": tool_index[event["index"]], "function": {"arguments": delta.get("partial_json", "")}}]
            )
    elif kind == "content_block_start":
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            tool_index[event.get("index", 0)] = len(tool_index)
            return StreamDelta(
                tool_calls=[
                    {
                        "index": tool_index[event.get("index", 0)],
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""},
                    }
                ]
            )
    elif kind == "message_start":
        usage = (event.get("message") or {}).get("usage") or {}
        return StreamDelta(prompt_tokens=usage.get("input_tokens") or 0)
    elif kind == "message_delta":
        return StreamDelta(
            finish_reason=STOP_REASONS.get((event.get("delta") or {}).get("stop_reason") or "end_turn", "stop"),
            completion_tokens=(event.get("usage") or {}).get("output_tokens"),
        )
    elif kind == "error":
        error = event.get("error") or {}
        raise UpstreamError(
            f"upstream stream error: {error.get('message', 'unknown')}",
            retryable=error.get("type") in ("overloaded_error", "api_error", "rate_limit_error"),
            kind="unavailable" if error.get("type") == "overloaded_error" else "server",
        )
    return None
