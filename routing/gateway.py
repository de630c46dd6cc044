"""The protocol-independent request path: authenticate, route, call, log.

The native API and the OpenAI/Anthropic-compatible endpoints differ only in
how they parse requests and shape answers; everything between lives here.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.utils import timezone
from pydantic import BaseModel, ValidationError

from providers.adapters.base import ChatRequest, ChatResult, UpstreamError
from routing import execution
from routing.decision import Decision, RouteRequest, RoutingError
from routing.gateway_config import ClientInfo, ModelInfo, config_store
from routing.logwriter import request_log_writer
from routing.response_cache import cache_key, response_cache
from routing.router import route

logger = logging.getLogger("neuroroute.gateway")
MAX_LOGGED_CHARS = 200_000


class ClientError(Exception):
    """Bad input: answered with a 4xx in the endpoint's own error shape."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request", param: str | None = None):
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param


class MethodNotAllowed(ClientError):
    def __init__(self, method: str, allowed: str) -> None:
        super().__init__(f"Method {method} not allowed; use {allowed}", status=405, code="method_not_allowed")
        self.allowed = allowed


def require_method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise MethodNotAllowed(request.method, method)


def bearer_token(request: HttpRequest, *, allow_x_api_key: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if allow_x_api_key:
        return request.headers.get("x-api-key", "").strip()
    return ""


async def authenticate(request: HttpRequest, *, allow_x_api_key: bool = False) -> ClientInfo:
    raw = bearer_token(request, allow_x_api_key=allow_x_api_key)
    if not raw:
        raise ClientError("Missing credentials: send 'Authorization: Bearer <token>'", status=401, code="unauthorized")
    client = await config_store.client_for(raw)
    if client is None:
        raise ClientError("Invalid or revoked token", status=401, code="unauthorized")
    return client


def parse_json(request: HttpRequest) -> Any:
    limit = settings.NEUROROUTE["MAX_BODY_BYTES"]
    try:
        body = request.body  # Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
    except RequestDataTooBig:
        body = None
    if body is None or len(body) > limit:
        raise ClientError(f"Request body too large (limit {limit} bytes)", status=413, code="payload_too_large")
    if not body:
        raise ClientError("Request body is empty; send a JSON object", code="invalid_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(f"Body is not valid UTF-8 JSON: {exc}", code="invalid_json") from None


Model = TypeVar("Model", bound=BaseModel)
# pydantic names the union member that failed in an error's location ("str",
# "literal['a','b']", "ContentPart"); clients want only the field path.
_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|none|literal|function-\w+)\b|[\[\]'A-Z]")


def param_path(loc: tuple[Any, ...]) -> str | None:
    """`messages[0].role` from pydantic's location, without its union-member tags."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _TYPE_TAG.search(part):
            path += f".{part}" if path else part
    return path or None


def validate(schema: type[Model], body: Any) -> Model:
    if not isinstance(body, dict):
        raise ClientError("Body must be a JSON object")
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = param_path(first["loc"])
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise ClientError(f"{param}: {message}" if param else message, param=param) from None


def render_messages(messages: list[dict[str, Any]]) -> str:
    """A readable transcript for the request log."""
    lines = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = " ".join(
                part.get("text", f"[{part.get('type', 'part')}]") for part in content or [] if isinstance(part, dict)
            )
        lines.append(f"{message.get('role', 'user')}: {content}")
    return "\n".join(lines)


@dataclass
class GatewayCall:
    endpoint: str
    client: ClientInfo | None
    route_request: RouteRequest
    params: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, stop, tools…
    metadata: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    use_cache: bool = True
    deadline_s: float | None = None
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=timezone.now)
    decision: Decision | None = None
    execution: execution.Execution | None = None
    cache_key: str = ""

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def chat_request(self, model: ModelInfo) -> ChatRequest:
        return ChatRequest(model=model.upstream_model, messages=self.route_request.messages, **self.params)

    def route_info(self) -> dict[str, Any]:
        summary = self.decision.summary() if self.decision else {"model": None, "reason": "", "rule": None}
        if self.execution is not None and self.execution.fell_back:
            summary = {**summary, "model": self.execution.model.key, "fallback": self.execution.fallback_note()}
        return summary


async def prepare(call: GatewayCall) -> GatewayCall:
    """Route the call (no upstream traffic); raises RoutingError."""
    if call.client is not None and not call.route_request.priority and call.client.priority:
        call.route_request.priority = call.client.priority
    call.decision = route(call.route_request, await config_store.get())
    deadline = min(call.deadline_s or settings.NEUROROUTE["REQUEST_DEADLINE"], settings.NEUROROUTE["REQUEST_DEADLINE"])
    call.execution = execution.Execution(decision=call.decision, deadline=time.monotonic() + deadline)
    return call


@dataclass
class Completed:
    result: ChatResult
    model: ModelInfo
    cached: bool


async def complete(call: GatewayCall) -> Completed:
    await prepare(call)
    model = call.decision.model
    if call.use_cache and not call.params.get("tools"):
        call.cache_key = cache_key(model.key, call.route_request.messages, call.params)
        hit = await response_cache.get(call.cache_key)
        if hit is not None:
            call.execution.model = model
            return Completed(ChatResult(**hit), model, cached=True)
    result = await execution.complete(call.execution, call.chat_request)
    if call.cache_key and result.finish_reason in ("stop", "length"):
        await response_cache.set(
            call.cache_key,
            {
                "text": result.text,
                "finish_reason": result.finish_reason,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            },
        )
    return Completed(result, call.execution.model, cached=False)


def log_call(
    call: GatewayCall,
    *,
    status: str,
    http_status: int,
    response: str = "",
    error: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cached: bool = False,
    ttft_ms: float | None = None,
) -> None:
    """Queue the one log row this request gets, whatever happened."""
    model = call.execution.model if call.execution and call.execution.model else (call.decision.model if call.decision else None)
    decision = call.decision.explain() if call.decision else {}
    if call.execution is not None and call.execution.fell_back:
        decision["fallback"] = call.execution.fallback_note()
    cost = model.cost(prompt_tokens, completion_tokens) if model and not cached else 0.0
    request_log_writer.add(
        {
            "request_id": call.request_id,
            "created_at": call.created_at,
            "endpoint": call.endpoint,
            "client_id": call.client.id if call.client else None,
            "user_id": str(call.metadata.get("user_id") or "")[:200],
            "metadata": call.metadata,
            "prompt": render_messages(call.route_request.messages)[:MAX_LOGGED_CHARS] if call.route_request else "",
            "response": response[:MAX_LOGGED_CHARS],
            "model_key": model.key if model else "",
            "upstream_model": model.upstream_model if model else "",
            "provider": model.provider.name if model else "",
            "route_reason": (decision.get("fallback") or (call.decision.reason if call.decision else ""))[:300],
            "route_rule": (call.decision.rule or "") if call.decision else "",
            "decision": decision,
            "attempts": [a.as_dict() for a in call.execution.attempts] if call.execution else [],
            "status": status,
            "http_status": http_status,
            "error": error[:2000],
            "stream": call.stream,
            "cache_hit": cached,
            "latency_ms": round(call.elapsed_ms(), 3),
            "ttft_ms": round(ttft_ms, 3) if ttft_ms is not None else None,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": Decimal(str(round(cost, 6))),
        }
    )
    logger.info(
        "request",
        extra={
            "request_id": str(call.request_id),
            "endpoint": call.endpoint,
            "model": model.key if model else None,
            "status": status,
            "http_status": http_status,
            "latency_ms": round(call.elapsed_ms(), 2),
            "ttft_ms": ttft_ms,
            "cached": cached,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        },
    )


def log_failure(call: GatewayCall, exc: Exception) -> int:
    """Log a failed call; returns the HTTP status to answer with."""
    if isinstance(exc, UpstreamError):
        status = exc.client_status()
        log_call(call, status="upstream_error", http_status=status, error=exc.message)
    elif isinstance(exc, (RoutingError, ClientError)):
        status = exc.status
        log_call(call, status="client_error", http_status=status, error=exc.message)
    else:
        status = 500
        log_call(call, status="error", http_status=500, error=f"{type(exc).__name__}: {exc}")
    return status


def unrouted_call(endpoint: str, client: ClientInfo | None = None, body: Any = None) -> GatewayCall:
    """A call record for requests rejected before they could be parsed."""
    text = ""
    if isinstance(body, dict) and isinstance(body.get("prompt"), str):
        text = body["prompt"]
    return GatewayCall(
        endpoint=endpoint,
        client=client,
        route_request=RouteRequest(messages=[{"role": "user", "content": text}] if text else [], prompt_text=text),
    )
