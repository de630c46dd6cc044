"""The native API: POST /prompt and POST /route (async views on the hot path)."""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.adapters.base import StreamDelta
from routing import gateway
from routing.answering import answer, with_error_headers
from routing.decision import RouteRequest, RoutingError
from routing.gateway import ClientError, GatewayCall, validate
from routing.streaming import StreamTally

Priority = Literal["cost", "speed", "quality"]


class PromptMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    user_id: str | None = Field(default=None, max_length=200)
    priority: Priority | None = None
    model: str | None = Field(default=None, max_length=120, description="Force a model key or upstream model name.")
    cache: bool = Field(default=True, description="Set false to bypass the response cache.")
    deadline_s: float | None = Field(default=None, gt=0, le=600, description="Overall deadline for this request.")


class PromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1)
    metadata: PromptMetadata = Field(default_factory=PromptMetadata)
    system: str | None = None
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)

    @field_validator("prompt")
    @classmethod
    def prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RouteOut(BaseModel):
    model: str | None
    reason: str
    rule: str | None
    fallback: str | None = None


class PromptOut(BaseModel):
    request_id: str
    model_used: str = Field(description="Registry key of the model that answered.")
    upstream_model: str
    response: str
    latency_ms: float
    token_usage: TokenUsage
    cost_usd: float
    route: RouteOut
    cached: bool


class RouteDecisionOut(BaseModel):
    route: RouteOut
    explanation: dict[str, Any]


def error_response(exc: Exception, status: int) -> HttpResponse:
    body = {"error": {"message": exc.message, "code": getattr(exc, "code", None) or getattr(exc, "kind", "error"), "status": status}}
    if getattr(exc, "param", None):
        body["error"]["param"] = exc.param
    return with_error_headers(json_response(body, status), exc)


def json_response(data: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def parse_prompt(body: Any) -> PromptIn:
    data = validate(PromptIn, body)
    limit = settings.NEUROROUTE["MAX_PROMPT_CHARS"]
    if len(data.prompt) > limit:
        raise ClientError(f"prompt: exceeds {limit} characters", status=413, code="payload_too_large", param="prompt")
    return data


def build_call(endpoint: str, client, data: PromptIn) -> GatewayCall:
    messages = [{"role": "user", "content": data.prompt}]
    if data.system:
        messages.insert(0, {"role": "system", "content": data.system})
    metadata = data.metadata.model_dump(exclude_none=True)
    params = {k: v for k, v in (("max_tokens", data.max_tokens), ("temperature", data.temperature)) if v is not None}
    return GatewayCall(
        endpoint=endpoint,
        client=client,
        route_request=RouteRequest(
            messages=messages,
            prompt_text=data.prompt,
            requested_model=data.metadata.model,
            priority=data.metadata.priority,
            max_tokens=data.max_tokens,
        ),
        params=params,
        metadata=metadata,
        stream=data.stream,
        use_cache=data.metadata.cache,
        deadline_s=data.metadata.deadline_s,
    )


async def _parsed_call(request: HttpRequest, endpoint: str) -> GatewayCall:
    """Check, authenticate and parse; on failure the error is logged and re-raised."""
    client = None
    body = None
    try:
        gateway.require_method(request, "POST")
        client = await gateway.authenticate(request)
        body = gateway.parse_json(request)
        return build_call(endpoint, client, parse_prompt(body))
    except ClientError as exc:
        gateway.log_failure(gateway.unrouted_call(endpoint, client, body), exc)
        raise


def request_id_header(call: GatewayCall) -> dict[str, str]:
    return {"X-Request-Id": str(call.request_id)}


def prompt_body(call: GatewayCall, done: gateway.Completed) -> dict[str, Any]:
    result = done.result
    return {
        "request_id": str(call.request_id),
        "model_used": done.model.key,
        "upstream_model": done.model.upstream_model,
        "response": result.text,
        "latency_ms": round(call.elapsed_ms(), 2),
        "token_usage": usage(result.prompt_tokens, result.completion_tokens),
        "cost_usd": 0.0 if done.cached else round(done.model.cost(result.prompt_tokens, result.completion_tokens), 6),
        "route": call.route_info(),
        "cached": done.cached,
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@csrf_exempt
async def prompt_view(request: HttpRequest) -> HttpResponse:
    try:
        call = await _parsed_call(request, "prompt")
    except ClientError as exc:
        return error_response(exc, exc.status)
    return await answer(
        call, writer_for=PromptEvents, body_for=prompt_body, headers_for=request_id_header, respond=error_response
    )


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class PromptEvents:
    """The native stream: `route`, then `delta`s, then `done` (or `error`)."""

    def __init__(self, call: GatewayCall) -> None:
        self.call = call

    def start(self, tally: StreamTally) -> bytes:
        return sse("route", {"request_id": str(self.call.request_id), "route": self.call.route_info()})

    def delta(self, delta: StreamDelta) -> bytes:
        return sse("delta", {"text": delta.text}) if delta.text else b""

    def finish(self, tally: StreamTally) -> bytes:
        model = self.call.execution.model
        prompt_tokens, completion_tokens = tally.usage()
        return sse(
            "done",
            {
                "request_id": str(self.call.request_id),
                "model_used": model.key,
                "upstream_model": model.upstream_model,
                "latency_ms": round(self.call.elapsed_ms(), 2),
                "token_usage": usage(prompt_tokens, completion_tokens),
                "cost_usd": round(model.cost(prompt_tokens, completion_tokens), 6),
                "route": self.call.route_info(),
                "cached": False,
            },
        )

    def error(self, status: int, message: str, code: str) -> bytes:
        return sse("error", {"error": {"message": message, "code": code, "status": status}})


@csrf_exempt
async def route_view(request: HttpRequest) -> HttpResponse:
    """Dry run: the routing decision with its explanation, no LLM call."""
    started = time.perf_counter()
    try:
        gateway.require_method(request, "POST")
        client = await gateway.authenticate(request)
        call = build_call("route", client, parse_prompt(gateway.parse_json(request)))
        await gateway.prepare(call)
    except (ClientError, RoutingError) as exc:
        return error_response(exc, exc.status)
    explanation = call.decision.explain()
    explanation["decision_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return json_response({"route": call.route_info(), "explanation": explanation})
