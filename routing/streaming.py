"""Streamed answers, whatever the protocol: relay upstream deltas, log exactly once.

Internally every answer is a series of OpenAI-shaped StreamDeltas; a
StreamWriter turns them into one protocol's bytes (OpenAI chunks, Anthropic
events, or the native API's events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

from django.http import StreamingHttpResponse

from providers.adapters.base import StreamDelta, UpstreamError
from routing import execution, gateway
from routing.gateway import GatewayCall
from routing.tokens import count_message_tokens, count_tokens

logger = logging.getLogger("neuroroute.streaming")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def tool_call_summary(tool_calls: list[dict[str, Any]]) -> str:
    lines = []
    for call in tool_calls:
        function = call.get("function") or {}
        lines.append(f"[tool call] {function.get('name', '')}({function.get('arguments', '')})")
    return "\n".join(lines)


def logged_response(text: str, tool_calls: list[dict[str, Any]]) -> str:
    """The answer as the request log shows it: the text, then any tool calls."""
    summary = tool_call_summary(tool_calls)
    return f"{text}\n{summary}" if text and summary else text or summary


class StreamTally:
    """Everything a stream has delivered so far: its one log row is built from this."""

    def __init__(self, call: GatewayCall) -> None:
        self.call = call
        self.parts: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reason: str | None = None
        self.ttft_ms: float | None = None

    def add(self, delta: StreamDelta) -> None:
        if delta.text:
            self.parts.append(delta.text)
        for fragment in delta.tool_calls or ():
            call = self.tool_calls.setdefault(
                fragment.get("index", 0), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = fragment.get("id") or call["id"]
            function = fragment.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
        if delta.prompt_tokens is not None:
            self.prompt_tokens = delta.prompt_tokens
        if delta.completion_tokens is not None:
            self.completion_tokens = delta.completion_tokens
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if (delta.text or delta.tool_calls) and self.ttft_ms is None:
            self.ttft_ms = self.call.elapsed_ms()

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def calls(self) -> list[dict[str, Any]]:
        return [self.tool_calls[index] for index in sorted(self.tool_calls)]

    def usage(self) -> tuple[int, int]:
        """Upstream's counts when it sent them (it does not when cut short), else our own."""
        prompt = self.prompt_tokens
        if prompt is None:
            prompt = count_message_tokens(self.call.route_request.messages)
        completion = self.completion_tokens
        if completion is None:
            completion = count_tokens(self.text + "".join(c["function"]["arguments"] for c in self.calls()))
        return prompt, completion

    def log(self, *, status: str, http_status: int, error: str = "") -> None:
        prompt_tokens, completion_tokens = self.usage()
        gateway.log_call(
            self.call,
            status=status,
            http_status=http_status,
            response=logged_response(self.text, self.calls()),
            error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ttft_ms=self.ttft_ms,
        )


async def open_stream(call: GatewayCall) -> tuple[AsyncIterator[StreamDelta], StreamDelta | None]:
    """Route the call and start its upstream stream, up to the first delta.

    Until that delta the client has received nothing, so a failure (after
    execution's retries and fallbacks) still gets a real HTTP error status
    rather than an error event inside a 200 stream. Raises RoutingError or
    UpstreamError; a client that leaves meanwhile is logged as cancelled.
    """
    try:
        await gateway.prepare(call)
        deltas = execution.stream(call.execution, call.chat_request)
        try:
            first = await anext(deltas)
        except StopAsyncIteration:
            first = None
        return deltas, first
    except asyncio.CancelledError:
        gateway.log_call(call, status="cancelled", http_status=499, error="client disconnected before the first token")
        raise


class StreamWriter(Protocol):
    """Turns StreamDeltas into one protocol's bytes."""

    def start(self, tally: StreamTally) -> bytes: ...

    def delta(self, delta: StreamDelta) -> bytes: ...

    def finish(self, tally: StreamTally) -> bytes: ...

    def error(self, status: int, message: str, code: str) -> bytes: ...


# Tasks closing abandoned streams: the loop keeps only weak references to tasks.
_closing: set[asyncio.Task] = set()


class Relay:
    """A streamed answer: upstream deltas out as protocol bytes, logged exactly once.

    The body's `finally` writes the log row however the stream ends: done,
    upstream failure, or the client leaving (Django cancels the task, or
    closes the body). Django calls close() once the response is over; that
    covers a body left suspended, or never iterated, by a client that left.
    """

    def __init__(
        self, call: GatewayCall, deltas: AsyncIterator[StreamDelta], first: StreamDelta | None, writer: StreamWriter
    ) -> None:
        self.call, self.deltas, self.first, self.writer = call, deltas, first, writer
        self.tally = StreamTally(call)
        self.body: AsyncIterator[bytes] | None = None
        self.finished = False
        self._logged = False
        self._log_lock = threading.Lock()  # close() runs on a worker thread
        self._loop = asyncio.get_running_loop()

    def __aiter__(self) -> AsyncIterator[bytes]:
        self.body = self._body()
        return self.body

    async def _body(self) -> AsyncIterator[bytes]:
        status, http_status, error = "ok", 200, ""
        try:
            if self.first is not None:
                self.tally.add(self.first)
            if start := self.writer.start(self.tally):
                yield start
            if self.first is not None and (chunk := self.writer.delta(self.first)):
                yield chunk
            async for delta in self.deltas:
                self.tally.add(delta)
                if chunk := self.writer.delta(delta):
                    yield chunk
            yield self.writer.finish(self.tally)
        except UpstreamError as exc:
            status, http_status, error = "upstream_error", exc.client_status(), exc.message
            yield self.writer.error(http_status, exc.message, exc.kind)
        except (asyncio.CancelledError, GeneratorExit):
            status, http_status, error = "cancelled", 499, "client disconnected"
            raise
        except Exception as exc:
            logger.exception("stream failed", extra={"request_id": str(self.call.request_id)})
            status, http_status, error = "error", 500, f"{type(exc).__name__}: {exc}"
            yield self.writer.error(500, "Internal error", "internal_error")
        finally:
            self.finished = True
            self.log_once(status=status, http_status=http_status, error=error)
            await self.deltas.aclose()

    def log_once(self, *, status: str, http_status: int, error: str = "") -> None:
        with self._log_lock:
            if self._logged:
                return
            self._logged = True
        self.tally.log(status=status, http_status=http_status, error=error)

    def close(self) -> None:
        """Called by Django, from a worker thread, when the response is done with."""
        if self.finished:
            return
        self.log_once(status="cancelled", http_status=499, error="client disconnected")
        abandon = self._abandon()
        try:
            self._loop.call_soon_threadsafe(self._start_task, abandon)
        except RuntimeError:  # the loop is closed, and the upstream connection with it
            abandon.close()

    async def _abandon(self) -> None:
        # Either may already be closing (the body's finalizer got there first):
        # aclose() then raises RuntimeError, and there is nothing left to do.
        with contextlib.suppress(RuntimeError):
            if self.body is not None:
                await self.body.aclose()
            await self.deltas.aclose()  # closes the upstream response

    def _start_task(self, coroutine) -> None:
        task = self._loop.create_task(coroutine)
        _closing.add(task)
        task.add_done_callback(_closing.discard)


def sse_response(relay: Relay, headers: dict[str, str]) -> StreamingHttpResponse:
    return StreamingHttpResponse(relay, content_type="text/event-stream", headers={**SSE_HEADERS, **headers})
