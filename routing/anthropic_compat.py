"""Anthropic-compatible endpoint: POST /v1/messages.

Any Anthropic SDK works against NeuroRoute with only its base URL changed
(the NeuroRoute token goes where the Anthropic key would: `x-api-key` or
`Authorization: Bearer`). The request is translated into the gateway's
OpenAI-shaped messages, routed to whichever model fits (OpenAI, local or
Anthropic), and the answer translated back into a `message`, or into
Anthropic's event stream.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.adapters.base import StreamDelta
from routing import gateway
from routing.answering import answer, failed, with_error_headers
from routing.decision import RouteRequest
from routing.gateway import ClientError, GatewayCall, require_method
from routing.openai_compat import (
    route_headers,
    unknown_model_as_404,
    validate,
    wants_cache,
)
from routing.streaming import StreamTally

ENDPOINT = "messages"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


# --------------------------------------------------------------------------- request


class TextBlock(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # cache_control, citations

    type: Literal["text"]
    text: str


class Base64Source(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["base64"]
    media_type: str = Field(min_length=1)
    data: str = Field(min_length=1)


class URLSource(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["url"]
    url: str = Field(min_length=1)


class ImageBlock(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["image"]
    source: Annotated[Base64Source | URLSource, Field(discriminator="type")]

    def as_openai_part(self) -> dict[str, Any]:
        source = self.source
        url = source.url if isinstance(source, URLSource) else f"data:{source.media_type};base64,{source.data}"
        return {"type": "image_url", "image_url": {"url": url}}


class ToolUseBlock(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


ResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            text = self.content
        else:
            # OpenAI tool messages carry text only; images in a result are dropped.
            text = "\n".join(part.text for part in self.content or () if isinstance(part, TextBlock))
        return f"Error: {text}" if self.is_error else text


Block = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["user", "assistant"]
    content: str | list[Block]

    @model_validator(mode="after")
    def blocks_fit_role(self) -> MessageIn:
        if isinstance(self.content, list):
            wrong = "tool_result" if self.role == "assistant" else "tool_use"
            if any(block.type == wrong for block in self.content):
                raise ValueError(f"{wrong} blocks cannot appear in a {self.role} message")
        return self


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]

    def as_openai_tool(self) -> dict[str, Any]:
        function = {"name": self.name, "parameters": self.input_schema}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class ToolChoiceIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def named_when_tool(self) -> ToolChoiceIn:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice of type 'tool' needs a 'name'")
        return self

    def as_openai_choice(self) -> str | dict[str, Any]:
        if self.type == "tool":
            return {"type": "function", "function": {"name": self.name}}
        return {"auto": "auto", "any": "required", "none": "none"}[self.type]


class MetadataIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    user_id: str | None = Field(default=None, max_length=200)


class MessagesIn(BaseModel):
    # Fields NeuroRoute does not use (top_k, thinking, service_tier…) are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1, max_length=200)
    max_tokens: int = Field(ge=1, le=1_000_000)
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    stream: bool = False
    metadata: MetadataIn | None = None


def to_openai_messages(data: MessagesIn) -> list[dict[str, Any]]:
    """Anthropic turns as the gateway's OpenAI-shaped messages.

    tool_use blocks become the assistant's tool_calls; tool_result blocks
    become `tool` messages, placed before the rest of their user turn as
    OpenAI expects them right after the assistant's calls.
    """
    system = data.system if isinstance(data.system, str) else "\n\n".join(b.text for b in data.system or ())
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in data.messages:
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
        elif message.role == "assistant":
            text = "".join(block.text for block in message.content if isinstance(block, TextBlock))
            calls = [
                {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": json.dumps(block.input)}}
                for block in message.content
                if isinstance(block, ToolUseBlock)
            ]
            messages.append({"role": "assistant", "content": text or (None if calls else ""), **({"tool_calls": calls} if calls else {})})
        else:
            parts: list[dict[str, Any]] = []
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    messages.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text()})
                elif isinstance(block, TextBlock):
                    parts.append({"type": "text", "text": block.text})
                elif isinstance(block, ImageBlock):
                    parts.append(block.as_openai_part())
            if len(parts) == 1 and parts[0]["type"] == "text":
                messages.append({"role": "user", "content": parts[0]["text"]})
            elif parts:
                messages.append({"role": "user", "content": parts})
    return messages


def user_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return " ".join(part["text"] for part in content or () if part.get("type") == "text")


def has_image(data: MessagesIn) -> bool:
    for message in data.messages:
        for block in message.content if isinstance(message.content, list) else ():
            parts = block.content if isinstance(block, ToolResultBlock) and isinstance(block.content, list) else [block]
            if any(isinstance(part, ImageBlock) for part in parts):
                return True
    return False


def build_call(client, data: MessagesIn, request: HttpRequest) -> GatewayCall:
    messages = to_openai_messages(data)
    prompt_text = next((user_text(m) for m in reversed(messages) if m["role"] == "user"), "")
    needs = {"vision"} if has_image(data) else set()
    if data.tools:
        needs.add("tools")
    params: dict[str, Any] = {"max_tokens": data.max_tokens}
    if data.temperature is not None:
        params["temperature"] = data.temperature
    if data.top_p is not None:
        params["top_p"] = data.top_p
    if data.stop_sequences:
        params["stop"] = data.stop_sequences
    if data.tools:
        params["tools"] = [tool.as_openai_tool() for tool in data.tools]
        if data.tool_choice is not None:
            params["tool_choice"] = data.tool_choice.as_openai_choice()
    user_id = data.metadata.user_id if data.metadata else None
    return GatewayCall(
        endpoint=ENDPOINT,
        client=client,
        route_request=RouteRequest(
            messages=messages,
            prompt_text=prompt_text,
            requested_model=data.model,
            max_tokens=data.max_tokens,
            needs=frozenset(needs),
        ),
        params=params,
        metadata={"user_id": user_id} if user_id else {},
        stream=data.stream,
        use_cache=wants_cache(request),
    )


# --------------------------------------------------------------------------- answers


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    etype = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": etype, "message": message}}


def error_response(exc: Exception, status: int) -> HttpResponse:
    message = getattr(exc, "message", None) or "Internal error"
    response = HttpResponse(orjson.dumps(error_body(status, message)), status=status, content_type="application/json")
    return with_error_headers(response, exc)


def content_blocks(text: str, tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not tool_calls else []
    for call in tool_calls:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": arguments})
    return blocks


def usage_body(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message_body(call: GatewayCall, done: gateway.Completed) -> dict[str, Any]:
    result = done.result
    return {
        "id": f"msg_{call.request_id.hex}",
        "type": "message",
        "role": "assistant",
        "model": done.model.upstream_model,
        "content": content_blocks(result.text, result.tool_calls),
        "stop_reason": STOP_REASONS.get(result.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": usage_body(result.prompt_tokens, result.completion_tokens),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventWriter:
    """Anthropic's stream: message_start, content blocks (text or tool_use), message_delta, message_stop."""

    def __init__(self, call: GatewayCall) -> None:
        self.call = call
        self.index = -1  # the open content block, if any
        self.block_type: str | None = None
        self.tool_index: int | None = None  # the OpenAI tool_call index the open tool_use block carries
        self.pinged = False

    def start(self, tally: StreamTally) -> bytes:
        input_tokens, _ = tally.usage()
        message = {
            "id": f"msg_{self.call.request_id.hex}",
            "type": "message",
            "role": "assistant",
            "model": self.call.execution.model.upstream_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_body(input_tokens, 0),
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.block_type = block["type"]
        out += event("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block})
        if not self.pinged:
            self.pinged = True
            out += event("ping", {"type": "ping"})
        return out

    def _close(self) -> bytes:
        if self.block_type is None:
            return b""
        self.block_type = self.tool_index = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def delta(self, delta: StreamDelta) -> bytes:
        out = b""
        if delta.text:
            if self.block_type != "text":
                out += self._open({"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": delta.text})
        for fragment in delta.tool_calls or ():
            index = fragment.get("index", 0)
            function = fragment.get("function") or {}
            if self.block_type != "tool_use" or self.tool_index != index:
                block = {"type": "tool_use", "id": fragment.get("id") or "", "name": function.get("name") or "", "input": {}}
                out += self._open(block)
                self.tool_index = index
            if function.get("arguments"):
                out += self._delta({"type": "input_json_delta", "partial_json": function["arguments"]})
        return out

    def finish(self, tally: StreamTally) -> bytes:
        input_tokens, output_tokens = tally.usage()
        out = self._close()
        out += event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": STOP_REASONS.get(tally.finish_reason or "stop", "end_turn"), "stop_sequence": None},
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            },
        )
        return out + event("message_stop", {"type": "message_stop"})

    def error(self, status: int, message: str, code: str) -> bytes:
        return event("error", error_body(status, message))


def answer_headers(call: GatewayCall) -> dict[str, str]:
    return {**route_headers(call), "request-id": f"req_{call.request_id.hex}"}


@csrf_exempt
async def messages_view(request: HttpRequest) -> HttpResponse:
    client = body = None
    try:
        require_method(request, "POST")
        client = await gateway.authenticate(request, allow_x_api_key=True)
        body = gateway.parse_json(request)
        data = validate(MessagesIn, body)
    except ClientError as exc:
        return failed(gateway.unrouted_call(ENDPOINT, client, body), exc, error_response, unknown_model_as_404)
    return await answer(
        build_call(client, data, request),
        writer_for=EventWriter,
        body_for=message_body,
        headers_for=answer_headers,
        respond=error_response,
        translate=unknown_model_as_404,
    )
