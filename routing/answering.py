"""Answer a parsed gateway call in any protocol, writing its one log row.

The native API and both compatible endpoints differ only in the writer of
stream events, the body of a complete answer, the headers and the error
shape; the order of routing, calling, logging and failing is the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpResponse

from providers.adapters.base import UpstreamError
from routing import gateway
from routing.decision import RoutingError
from routing.gateway import GatewayCall, MethodNotAllowed
from routing.streaming import (
    Relay,
    StreamWriter,
    logged_response,
    open_stream,
    sse_response,
)

logger = logging.getLogger("neuroroute.answering")

Respond = Callable[[Exception, int], HttpResponse]
Translate = Callable[[Exception], Exception]


def with_error_headers(response: HttpResponse, exc: Exception) -> HttpResponse:
    """Headers an error answer carries whatever its body's shape."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, round(retry_after)))
    if isinstance(exc, MethodNotAllowed):
        response["Allow"] = exc.allowed
    return response


def failed(call: GatewayCall, exc: Exception, respond: Respond, translate: Translate | None = None) -> HttpResponse:
    """Log the failure (the call's one row) and answer in the endpoint's error shape."""
    if translate is not None:
        exc = translate(exc)
    response = respond(exc, gateway.log_failure(call, exc))
    response["x-request-id"] = str(call.request_id)
    return response


async def answer(
    call: GatewayCall,
    *,
    writer_for: Callable[[GatewayCall], StreamWriter],
    body_for: Callable[[GatewayCall, gateway.Completed], dict[str, Any]],
    headers_for: Callable[[GatewayCall], dict[str, str]],
    respond: Respond,
    translate: Translate | None = None,
) -> HttpResponse:
    """Run a parsed call and answer it, streamed or not."""
    if call.stream:
        try:
            deltas, first = await open_stream(call)
        except (RoutingError, UpstreamError) as exc:
            return failed(call, exc, respond, translate)
        except Exception as exc:
            logger.exception("stream failed to start", extra={"request_id": str(call.request_id)})
            return failed(call, exc, respond, translate)
        return sse_response(Relay(call, deltas, first, writer_for(call)), headers_for(call))
    try:
        done = await gateway.complete(call)
    except asyncio.CancelledError:
        gateway.log_call(call, status="cancelled", http_status=499, error="client disconnected")
        raise
    except (RoutingError, UpstreamError) as exc:
        return failed(call, exc, respond, translate)
    except Exception as exc:
        logger.exception("request failed", extra={"request_id": str(call.request_id)})
        return failed(call, exc, respond, translate)
    result = done.result
    gateway.log_call(
        call,
        status="ok",
        http_status=200,
        response=logged_response(result.text, result.tool_calls),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cached=done.cached,
    )
    return HttpResponse(orjson.dumps(body_for(call, done)), content_type="application/json", headers=headers_for(call))
