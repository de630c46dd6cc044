"""OpenAI-compatible endpoints: POST /v1/chat/completions and GET /v1/models.

Any OpenAI SDK works against NeuroRoute with only its base URL changed. The
body is validated here, routed and executed by routing.gateway like the
native API, and answered in OpenAI's own shapes, streamed or not.

The stream plumbing lives in routing.streaming, shared with the native and
Anthropic-compatible endpoints.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from providers.adapters.base import StreamDelta
from providers.models import ModelEntry
from routing import gateway
from routing.answering import answer, failed, with_error_headers
from routing.decision import RouteRequest, RoutingError
from routing.gateway import ClientError, GatewayCall, require_method, validate
from routing.gateway_config import in_db_thread
from routing.streaming import StreamTally

logger = logging.getLogger("neuroroute.compat")
ENDPOINT = "chat.completions"


# --------------------------------------------------------------------------- request


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(BaseModel):
    # Other part types (input_audio, file…) pass through to providers that know them.
    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(min_length=1)
    text: str | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def payload_present(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs 'text'")
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an image_url part needs 'image_url'")
        return self


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str
    arguments: str


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def consistent(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id'")
        return self


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["function"]
    function: FunctionName


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class ChatCompletionIn(BaseModel):
    # OpenAI clients send many optional fields NeuroRoute does not use; they are
    # ignored, but the fields it does use are checked strictly.
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: str | list[str] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    user: str | None = Field(default=None, max_length=200)
    metadata: dict[str, str] | None = None

    @field_validator("n")
    @classmethod
    def single_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.text for part in content or () if part.type == "text" and part.text)


def unknown_model_as_404(exc: Exception) -> Exception:
    """The router calls an unknown model a bad request; both SDKs expect a 404."""
    if isinstance(exc, RoutingError) and exc.code == "unknown_model":
        return ClientError(exc.message, status=404, code="model_not_found", param="model")
    return exc


def route_headers(call: GatewayCall) -> dict[str, str]:
    route = call.route_info()
    reason = route.get("fallback") or route.get("reason") or ""
    return {
        "x-neuroroute-model": route.get("model") or "",
        "x-neuroroute-route-reason": " ".join(reason.split())[:300],
        "x-request-id": str(call.request_id),
    }



# --------------------------------------------------------------------------- answers


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    if status == 401:
        code = "invalid_api_key"
    etype = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def error_response(exc: Exception, status: int) -> HttpResponse:
    code = getattr(exc, "code", None) or getattr(exc, "kind", None)
    message = getattr(exc, "message", None) or "Internal error"
    response = HttpResponse(
        orjson.dumps(error_body(status, message, code, getattr(exc, "param", None))),
        status=status,
        content_type="application/json",
    )
    return with_error_headers(response, exc)


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


class ChunkWriter:
    """OpenAI's `chat.completion.chunk` SSE lines, then `data: [DONE]`."""

    def __init__(self, call: GatewayCall, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.head = {
            "id": f"chatcmpl-{call.request_id.hex}",
            "object": "chat.completion.chunk",
            "created": int(call.created_at.timestamp()),
            "model": call.execution.model.upstream_model,
            "system_fingerprint": None,
        }
        self.role_sent = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        body = {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if self.include_usage:
            body["usage"] = None  # as OpenAI does: every chunk but the last has usage null
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def start(self, tally: StreamTally) -> bytes:
        return b""

    def delta(self, delta: StreamDelta) -> bytes:
        if not (delta.text or delta.tool_calls):
            return b""
        out = b""
        body: dict[str, Any] = {}
        if delta.text:
            body["content"] = delta.text
        if delta.tool_calls:
            body["tool_calls"] = delta.tool_calls
        if not self.role_sent:
            self.role_sent = True
            if delta.text:
                out += self.chunk({"role": "assistant", "content": "", "refusal": None})
            else:  # a tool call opens the answer: the role rides on it, content null
                body = {"role": "assistant", "content": None, "refusal": None, **body}
        return out + self.chunk(body)

    def finish(self, tally: StreamTally) -> bytes:
        out = b"" if self.role_sent else self.chunk({"role": "assistant", "content": "", "refusal": None})
        out += self.chunk({}, tally.finish_reason or "stop")
        if self.include_usage:
            usage = {**self.head, "choices": [], "usage": usage_body(*tally.usage())}
            out += b"data: " + orjson.dumps(usage) + b"\n\n"
        return out + b"data: [DONE]\n\n"

    def error(self, status: int, message: str, code: str) -> bytes:
        # The OpenAI SDKs raise APIError on a data line carrying "error".
        return b"data: " + orjson.dumps(error_body(status, message, code)) + b"\n\n"


def build_call(client, data: ChatCompletionIn, request: HttpRequest) -> GatewayCall:
    messages = [message.model_dump(exclude_none=True) for message in data.messages]
    prompt_text = next((text_of(m.content) for m in reversed(data.messages) if m.role == "user"), "")
    needs = set()
    if any(isinstance(m.content, list) and any(p.type == "image_url" for p in m.content) for m in data.messages):
        needs.add("vision")
    if data.tools:
        needs.add("tools")
    max_tokens = data.max_completion_tokens or data.max_tokens
    tool_choice = data.tool_choice.model_dump() if isinstance(data.tool_choice, BaseModel) else data.tool_choice
    params: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": data.temperature,
        "top_p": data.top_p,
        "stop": [data.stop] if isinstance(data.stop, str) else data.stop,
        "tools": [tool.model_dump(exclude_none=True) for tool in data.tools] if data.tools else None,
        # Without tools there is nothing to choose from, and providers reject a choice.
        "tool_choice": tool_choice if data.tools else None,
    }
    metadata: dict[str, Any] = dict(data.metadata or {})
    if data.user:
        metadata["user_id"] = data.user
    return GatewayCall(
        endpoint=ENDPOINT,
        client=client,
        route_request=RouteRequest(
            messages=messages,
            prompt_text=prompt_text,
            requested_model=data.model,
            max_tokens=max_tokens,
            needs=frozenset(needs),
        ),
        params={name: value for name, value in params.items() if value is not None},
        metadata=metadata,
        stream=data.stream,
        use_cache=wants_cache(request),
    )


def wants_cache(request: HttpRequest) -> bool:
    """Opt-in: `X-NeuroRoute-Cache: on` lets a repeated request be answered from the cache.

    SDK users expect every call to generate anew (temperature, tools), so
    the compatible endpoints cache only when asked; `Cache-Control: no-cache`
    always wins.
    """
    directives = request.headers.get("Cache-Control", "").lower()
    if "no-cache" in directives or "no-store" in directives:
        return False
    return request.headers.get("X-NeuroRoute-Cache", "").strip().lower() in ("on", "1", "true")


def completion_body(call: GatewayCall, done: gateway.Completed) -> dict[str, Any]:
    result = done.result
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.text if result.text or not result.tool_calls else None,
        "refusal": None,
    }
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
    return {
        "id": f"chatcmpl-{call.request_id.hex}",
        "object": "chat.completion",
        "created": int(call.created_at.timestamp()),
        "model": done.model.upstream_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": result.finish_reason}],
        "usage": usage_body(result.prompt_tokens, result.completion_tokens),
        "system_fingerprint": None,
    }


@csrf_exempt
async def chat_completions_view(request: HttpRequest) -> HttpResponse:
    client = body = None
    try:
        require_method(request, "POST")
        client = await gateway.authenticate(request)
        body = gateway.parse_json(request)
        data = validate(ChatCompletionIn, body)
    except ClientError as exc:
        return failed(gateway.unrouted_call(ENDPOINT, client, body), exc, error_response, unknown_model_as_404)
    return await answer(
        build_call(client, data, request),
        writer_for=lambda call: ChunkWriter(call, data.include_usage),
        body_for=completion_body,
        headers_for=route_headers,
        respond=error_response,
        translate=unknown_model_as_404,
    )


@csrf_exempt
async def models_view(request: HttpRequest) -> HttpResponse:
    """`auto` first, then every enabled registry entry, in OpenAI's list shape."""
    try:
        require_method(request, "GET")
        await gateway.authenticate(request)
    except ClientError as exc:
        return error_response(exc, exc.status)
    entries = await in_db_thread(_usable_models)
    oldest = min((created for _, created, _ in entries), default=0)
    data = [{"id": "auto", "object": "model", "created": oldest, "owned_by": "neuroroute"}]
    data += [{"id": key, "object": "model", "created": created, "owned_by": owner} for key, created, owner in entries]
    return HttpResponse(orjson.dumps({"object": "list", "data": data}), content_type="application/json")


def _usable_models() -> list[tuple[str, int, str]]:
    rows = ModelEntry.objects.usable().order_by("key").values_list("key", "created_at", "provider__name")
    return [(key, int(created.timestamp()), provider) for key, created, provider in rows]
