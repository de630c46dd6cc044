"""A fake LLM upstream speaking the OpenAI chat-completions and Anthropic messages wire protocols.

Used by tests (in-process, port 0), by ``make run`` and by benchmarks (thousands of concurrent
streams), so the hot path never logs and builds bytes with orjson. It must not import Django:
bench scripts run ``python -m providers.fake_upstream --port N``.

Replies are deterministic: ``"[{model}] <first 80 chars of the last user message> ..."`` padded
with filler words to ``words`` (default 20). Tokens are counted as whitespace-separated words:
completion tokens == words in the reply, prompt tokens == words of all message + system text.
``max_tokens`` caps the reply in words (finish_reason "length" / stop_reason "max_tokens").
Faults (one per request) come from a ``[[fault:MODE key=value ...]]`` marker in the last user
message, which wins, or else from the queue filled via ``POST /_control/faults``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import functools
import itertools
import os
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from aiohttp import web

MODES = frozenset({"delay", "status", "reset", "truncate", "malformed", "slow_stream", "stream_error"})
MODEL_IDS = ("local-lmstudio", "gpt-4-turbo", "gpt-4o-mini", "claude-3-sonnet", "claude-3-haiku")
FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
MARKER_RE = re.compile(r"\[\[fault:(\w+)((?:\s+[\w-]+=[^\s\]]+)*)\s*\]\]")
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_ID_PREFIX = os.urandom(4).hex()  # ids are prefix + counter: unique and cheaper than uuid4
_ids = itertools.count(1)


@dataclass(slots=True)
class Options:
    latency_ms: float = 0
    chunks: int = 20
    chunk_interval_ms: float = 0
    require_key: str | None = None
    words: int = 20


@dataclass(slots=True)
class Fault:
    mode: str
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # exact name or fnmatch glob
    count: int = 1  # -1 = until cleared
    probability: float | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        params = dict(spec)
        mode, model = params.pop("mode", None), params.pop("model", None)
        count, prob = int(params.pop("count", 1)), params.pop("probability", None)
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {sorted(MODES)}")
        if count == 0 or count < -1:
            raise ValueError("count must be -1 (until cleared) or >= 1")
        return cls(mode, params, model, count, None if prob is None else float(prob))


@dataclass
class State:
    options: Options
    faults: list[Fault] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    by_path: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    faults_applied: Counter[str] = field(default_factory=Counter)
    streams: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def reset_counters(self) -> None:
        for counter in (self.by_path, self.by_model, self.faults_applied):
            counter.clear()
        self.streams = self.max_in_flight = 0

    def take_fault(self, model: str) -> Fault | None:
        """The first queued fault matching the model and winning its probability roll applies."""
        for i, fault in enumerate(self.faults):
            if fault.model is not None and not fnmatch.fnmatchcase(model, fault.model):
                continue
            if fault.probability is not None and self.rng.random() >= fault.probability:
                continue
            if fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    del self.faults[i]
            return fault
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"requests": sum(self.by_path.values()), "by_path": dict(self.by_path),
                "by_model": dict(self.by_model), "faults_applied": dict(self.faults_applied),
                "faults_pending": [{"mode": f.mode, **f.params, "model": f.model, "count": f.count,
                                    "probability": f.probability} for f in self.faults],
                "streams": self.streams, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight}


STATE = web.AppKey("fake_upstream_state", State)
MODELS_BODY = orjson.dumps({"object": "list", "data": [
    {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake-upstream"} for m in MODEL_IDS]})


def text_of(content: Any) -> str:
    """Text of a message content: a string or a list of {type: text, text} parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_user_text(messages: list[Any]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return text_of(msg.get("content"))
    return ""


def count_words(body: dict[str, Any]) -> int:
    texts = [text_of(body.get("system"))]
    texts += [text_of(m.get("content")) for m in body.get("messages") or () if isinstance(m, dict)]
    return max(sum(len(t.split()) for t in texts), 1)


def parse_marker(text: str) -> Fault | None:
    match = MARKER_RE.search(text) if "[[fault:" in text else None
    if not match or match.group(1) not in MODES:
        return None
    params: dict[str, Any] = {}
    for pair in match.group(2).split():
        key, _, raw = pair.partition("=")
        params[key] = int(raw) if raw.lstrip("-").isdigit() else raw
    return Fault(match.group(1), params)


def split_text(text: str, n: int, by_words: bool = True) -> list[str]:
    """Split into <= n non-empty pieces whose concatenation is exactly ``text``."""
    units, sep = (text.split(" "), " ") if by_words else (list(text), "")
    n = max(1, min(n, len(units)))
    cuts = [len(units) * i // n for i in range(n + 1)]
    return [(sep if i else "") + sep.join(units[cuts[i]:cuts[i + 1]]) for i in range(n)]


def fake_arguments(schema: Any) -> str:
    """Deterministic tool arguments (JSON string) filling the schema's required properties."""
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") or {}
    names = schema.get("required") or list(props)[:1] or ["location"]
    samples = {"number": 1, "integer": 1, "boolean": True, "array": [], "object": {}}
    return orjson.dumps({n: samples.get((props.get(n) or {}).get("type"), "San Francisco") for n in names}).decode()


def first_tool(body: dict[str, Any]) -> tuple[str, Any] | None:
    """(name, JSON schema) of the first tool, unless tool_choice is none (either protocol's spelling)."""
    tools, choice = body.get("tools"), body.get("tool_choice")
    if not tools or not isinstance(tools[0], dict) or choice == "none" or (
            isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    tool = tools[0].get("function") or tools[0]  # OpenAI nests the definition under "function"
    return str(tool.get("name", "tool")), tool.get("parameters", tool.get("input_schema"))


@dataclass(slots=True)
class Reply:
    model: str
    text: str
    finish: str  # OpenAI vocabulary: "stop" | "length" | "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    tool_name: str | None = None
    tool_args: str = ""
    include_usage: bool = False
    id: str = field(default_factory=lambda: f"{_ID_PREFIX}{next(_ids):012x}")


def make_reply(body: dict[str, Any], opts: Options) -> Reply:
    model, prompt, prompt_tokens = str(body["model"]), last_user_text(body["messages"]), count_words(body)
    if "weather" in prompt.lower() and (tool := first_tool(body)) is not None:
        args = fake_arguments(tool[1])
        return Reply(model, "", "tool_calls", prompt_tokens, max(len(args) // 4, 1), tool[0], args)
    words = [f"[{model}]", *" ".join(MARKER_RE.sub("", prompt).split())[:80].split(), "..."]
    words += [FILLER[i % len(FILLER)] for i in range(opts.words - len(words))]
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
        return Reply(model, " ".join(words[:max_tokens]), "length", prompt_tokens, max_tokens)
    return Reply(model, " ".join(words), "stop", prompt_tokens, len(words))


class OpenAIDialect:
    MALFORMED = b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": \n\ndata: [DONE]\n\n'

    @staticmethod
    def error(status: int, message: str, etype: str | None = None, param: str | None = None) -> bytes:
        etype = etype or ("server_error" if status >= 500 else ERROR_TYPES.get(status, "invalid_request_error"))
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return orjson.dumps({"error": {"message": message, "type": etype, "param": param, "code": code}})

    @staticmethod
    def api_key(request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else ""

    @staticmethod
    def usage(r: Reply) -> bytes:
        return orjson.dumps({"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                             "total_tokens": r.prompt_tokens + r.completion_tokens})

    @classmethod
    def full_body(cls, r: Reply) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": r.text or None, "refusal": None}
        if r.tool_name:
            message["tool_calls"] = [{"id": f"call_{r.id}", "type": "function",
                                      "function": {"name": r.tool_name, "arguments": r.tool_args}}]
        return orjson.dumps({
            "id": f"chatcmpl-{r.id}", "object": "chat.completion", "created": int(time.time()), "model": r.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": r.finish}],
            "usage": orjson.Fragment(cls.usage(r)), "system_fingerprint": "fp_fake"})

    @classmethod
    def stream_parts(cls, r: Reply, n: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
        # Chunks differ only in the delta, so the envelope is serialised once per response.
        env = b"data: " + orjson.dumps({"id": f"chatcmpl-{r.id}", "object": "chat.completion.chunk",
                                        "created": int(time.time()), "model": r.model})[:-1]
        pre, post = env + b',"choices":[{"index":0,"delta":', b',"finish_reason":null}]}\n\n'
        if r.tool_name:
            first = {"role": "assistant", "content": None, "tool_calls": [{
                "index": 0, "id": f"call_{r.id}", "type": "function",
                "function": {"name": r.tool_name, "arguments": ""}}]}
            pieces = [b'{"tool_calls":[{"index":0,"function":{"arguments":' + orjson.dumps(p) + b"}}]}"
                      for p in split_text(r.tool_args, n, by_words=False)]
        else:
            first = {"role": "assistant", "content": ""}
            pieces = [b'{"content":' + orjson.dumps(p) + b"}" for p in split_text(r.text, n)]
        tail = [env + b',"choices":[{"index":0,"delta":{},"finish_reason":"' + r.finish.encode() + b'"}]}\n\n']
        if r.include_usage:
            tail.append(env + b',"choices":[],"usage":' + cls.usage(r) + b"}\n\n")
        tail.append(b"data: [DONE]\n\n")
        return [pre + orjson.dumps(first) + post], [pre + p + post for p in pieces], tail

    @classmethod
    def error_event(cls, etype: str | None, message: str) -> bytes:
        return b"data: " + cls.error(500, message, etype) + b"\n\n"


class AnthropicDialect:
    MALFORMED = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": \n\n'
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

    @staticmethod
    def error(status: int, message: str, etype: str | None = None, param: str | None = None) -> bytes:
        etype = etype or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}})

    @staticmethod
    def api_key(request: web.Request) -> str:
        # The real API takes x-api-key, but anthropic SDK 2.x sends api_key as a Bearer token.
        return request.headers.get("x-api-key", "").strip() or OpenAIDialect.api_key(request)

    @classmethod
    def message(cls, r: Reply, content: list[Any], stop: str | None, output_tokens: int) -> dict[str, Any]:
        return {"id": f"msg_{r.id}", "type": "message", "role": "assistant", "model": r.model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": r.prompt_tokens, "output_tokens": output_tokens}}

    @classmethod
    def full_body(cls, r: Reply) -> bytes:
        block = ({"type": "tool_use", "id": f"toolu_{r.id}", "name": r.tool_name, "input": orjson.loads(r.tool_args)}
                 if r.tool_name else {"type": "text", "text": r.text})
        return orjson.dumps(cls.message(r, [block], cls.STOP[r.finish], r.completion_tokens))

    @staticmethod
    def event(name: bytes, data: bytes) -> bytes:
        return b"event: " + name + b"\ndata: " + data + b"\n\n"

    @classmethod
    def stream_parts(cls, r: Reply, n: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
        ev = cls.event
        if r.tool_name:
            block = {"type": "tool_use", "id": f"toolu_{r.id}", "name": r.tool_name, "input": {}}
            kind, pieces = b'"input_json_delta","partial_json":', split_text(r.tool_args, n, by_words=False)
        else:
            block, kind, pieces = {"type": "text", "text": ""}, b'"text_delta","text":', split_text(r.text, n)
        delta = {"type": "message_delta", "delta": {"stop_reason": cls.STOP[r.finish], "stop_sequence": None},
                 "usage": {"output_tokens": r.completion_tokens}}
        head = [ev(b"message_start", orjson.dumps({"type": "message_start", "message": cls.message(r, [], None, 1)})),
                ev(b"content_block_start", orjson.dumps({"type": "content_block_start", "index": 0,
                                                         "content_block": block})),
                ev(b"ping", b'{"type": "ping"}')]
        body = [ev(b"content_block_delta", b'{"type":"content_block_delta","index":0,"delta":{"type":'
                   + kind + orjson.dumps(p) + b"}}") for p in pieces]
        tail = [ev(b"content_block_stop", b'{"type":"content_block_stop","index":0}'),
                ev(b"message_delta", orjson.dumps(delta)), ev(b"message_stop", b'{"type":"message_stop"}')]
        return head, body, tail

    @classmethod
    def error_event(cls, etype: str | None, message: str) -> bytes:
        return cls.event(b"error", cls.error(529, message, etype))


Dialect = type[OpenAIDialect] | type[AnthropicDialect]


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


async def read_json(request: web.Request, dialect: Dialect) -> dict[str, Any] | web.Response:
    """Authenticate, parse and validate; returns the body or the protocol's error response."""
    state = request.app[STATE]
    state.by_path[request.path] += 1
    key = dialect.api_key(request)
    if not key or (state.options.require_key is not None and key != state.options.require_key):
        return json_response(dialect.error(401, "Invalid API key" if key else "Missing API key"), 401)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return json_response(dialect.error(400, "Request body is not valid JSON"), 400)
    if not isinstance(body, dict):
        return json_response(dialect.error(400, "Request body must be a JSON object"), 400)
    for name in ("model", "messages"):
        if not body.get(name):
            return json_response(dialect.error(400, f"'{name}' is required and must be non-empty", param=name), 400)
    if not isinstance(body["messages"], list):
        return json_response(dialect.error(400, "'messages' must be an array", param="messages"), 400)
    state.by_model[str(body["model"])] += 1
    return body


async def chat(request: web.Request, dialect: Dialect) -> web.StreamResponse:
    state = request.app[STATE]
    state.in_flight += 1  # benchmarks read max_in_flight to confirm the concurrency they reached
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        body = await read_json(request, dialect)
        return body if isinstance(body, web.Response) else await respond(request, dialect, body)
    finally:
        state.in_flight -= 1


async def respond(request: web.Request, dialect: Dialect, body: dict[str, Any]) -> web.StreamResponse:
    state = request.app[STATE]
    opts, stream = state.options, bool(body.get("stream"))
    fault = parse_marker(last_user_text(body["messages"])) or state.take_fault(str(body["model"]))
    mode, params = (fault.mode, fault.params) if fault else (None, {})
    if mode:
        state.faults_applied[mode] += 1
    delay = opts.latency_ms + (float(params.get("ms", 1000)) if mode == "delay" else 0)
    if delay:
        await asyncio.sleep(delay / 1000)
    if mode == "reset":
        await abort(request, rst=True)
        return web.Response()  # aiohttp quietly drops it: the transport is gone
    if mode == "status" or (mode == "stream_error" and not stream):
        return status_error(dialect, params)
    reply = make_reply(body, opts)
    if not stream:
        return await send_full(request, dialect.full_body(reply), mode)
    reply.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    interval = opts.chunk_interval_ms
    if mode == "slow_stream":
        interval = float(params.get("interval_ms", params.get("ms", 200)))
    state.streams += 1
    return await send_stream(request, dialect, reply, interval, mode, params)


def status_error(dialect: Dialect, params: dict[str, Any]) -> web.Response:
    code = int(params.get("code", params.get("status", 500)))
    headers = {name: str(params[key]) for key, name in (("retry_after", "Retry-After"),
                                                         ("retry_after_ms", "retry-after-ms")) if key in params}
    message = str(params.get("message", f"Injected fault: HTTP {code}"))
    return json_response(dialect.error(code, message, params.get("type")), code, headers)


async def send_full(request: web.Request, payload: bytes, mode: str | None) -> web.StreamResponse:
    if mode == "malformed":
        return json_response(payload[: len(payload) // 2])  # 200 with a cut-off, unparseable body
    if mode != "truncate":
        return json_response(payload)
    # Promise the full length, deliver half, then drop the connection.
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = len(payload)
    try:
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        await abort(request)
    except ConnectionError:
        pass
    return resp


async def send_stream(request: web.Request, dialect: Dialect, reply: Reply, interval_ms: float,
                      mode: str | None, params: dict[str, Any]) -> web.StreamResponse:
    head, pieces, tail = dialect.stream_parts(reply, request.app[STATE].options.chunks)
    if mode in ("truncate", "malformed", "stream_error"):
        pieces = pieces[: int(params.get("after", 0 if mode == "malformed" else 1))]
        message = str(params.get("message", "Injected stream error"))
        tail = [] if mode == "truncate" else [
            dialect.MALFORMED if mode == "malformed" else dialect.error_event(params.get("type"), message)]
    resp = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await resp.prepare(request)
        if interval_ms <= 0:
            await resp.write(b"".join(head + pieces + tail))  # one write: cheap under benchmark load
        else:
            await resp.write(b"".join(head + pieces[:1]))
            for piece in pieces[1:]:
                await asyncio.sleep(interval_ms / 1000)
                await resp.write(piece)
            if tail:
                await resp.write(b"".join(tail))
        if mode == "truncate":
            await abort(request)
        else:
            await resp.write_eof()
    except ConnectionError:
        pass  # the client went away mid-stream; not worth a log line
    return resp


async def abort(request: web.Request, rst: bool = False) -> None:
    """Drop the connection: after flushing what was written (FIN), or at once with a TCP RST."""
    for _ in range(0 if rst else 100):  # abort() discards bytes still buffered in user space
        if request.transport is None or not request.transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.01)
    if (transport := request.transport) is None:
        return
    if rst and (sock := transport.get_extra_info("socket")) is not None:
        # SO_LINGER 0 makes close() send a RST: a genuine "connection reset by peer".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def count_tokens(request: web.Request) -> web.Response:
    body = await read_json(request, AnthropicDialect)
    return body if isinstance(body, web.Response) else json_response(b'{"input_tokens":%d}' % count_words(body))


async def models(request: web.Request) -> web.Response:
    request.app[STATE].by_path[request.path] += 1
    if not AnthropicDialect.api_key(request):
        return json_response(OpenAIDialect.error(401, "Missing API key"), 401)
    return json_response(MODELS_BODY)


async def health(request: web.Request) -> web.Response:
    return json_response(b'{"status":"ok"}')


async def add_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        data = orjson.loads(await request.read())
        new = [Fault.from_spec(s) for s in data.get("faults", [data])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return json_response(orjson.dumps({"error": str(exc)}), 400)
    if "seed" in data:  # reproducible probability rolls
        state.rng.seed(data["seed"])
    state.faults.extend(new)
    return json_response(b'{"queued":%d}' % len(state.faults))


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return json_response(b'{"queued":0}')


async def stats(request: web.Request) -> web.Response:
    return json_response(orjson.dumps(request.app[STATE].to_dict()))


async def reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].reset_counters()
    return json_response(b'{"reset":true}')


def build_app(**options: Any) -> web.Application:
    """Options: latency_ms, chunks, chunk_interval_ms, require_key, words (see ``Options``)."""
    app = web.Application(client_max_size=64 * 1024**2)
    app[STATE] = State(Options(**options))
    app.router.add_post("/v1/chat/completions", functools.partial(chat, dialect=OpenAIDialect))
    app.router.add_post("/v1/messages", functools.partial(chat, dialect=AnthropicDialect))
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_post("/_control/faults", add_faults)
    app.router.add_delete("/_control/faults", clear_faults)
    app.router.add_get("/_control/stats", stats)
    app.router.add_post("/_control/reset", reset_stats)
    return app


class FakeUpstream:
    """Serves the app on port ``port`` (0 = any free one), in a daemon thread or on the caller's loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency_ms: float = 0, chunks: int = 20,
                 chunk_interval_ms: float = 0, require_key: str | None = None, words: int = 20) -> None:
        self.host, self.port = host, port
        self.app = build_app(latency_ms=latency_ms, chunks=chunks, chunk_interval_ms=chunk_interval_ms,
                             require_key=require_key, words=words)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"

    async def start(self) -> str:
        """Start on the running loop (async tests, ``serve``); returns the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, backlog=4096).start()
        self.port = self._runner.addresses[0][1]
        return self.url

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> str:
        """Serve from a daemon thread running its own loop; returns the base URL once listening."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        try:
            return asyncio.run_coroutine_threadsafe(self.start(), self._loop).result(timeout=10)
        except BaseException:  # e.g. port in use: don't leak the thread, re-raise to the caller
            self.stop()
            raise

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.aclose(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None


def serve(host: str = "127.0.0.1", port: int = 8090, **options: Any) -> None:
    """Serve until interrupted, on uvloop when available (``manage.py fake_upstream``, ``python -m``)."""
    try:
        import uvloop
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    server = FakeUpstream(host, port, **options)

    async def main() -> None:
        print(f"fake upstream on {await server.start()} (OpenAI base_url: /v1, Anthropic: /)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.aclose()

    with asyncio.Runner(loop_factory=loop_factory) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(main())


OPTION_NAMES = ("host", "port", "latency_ms", "chunks", "chunk_interval_ms", "words", "require_key")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Shared by ``python -m providers.fake_upstream`` and the management command."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before the first byte")
    parser.add_argument("--chunks", type=int, default=20, help="stream chunks per response")
    parser.add_argument("--chunk-interval-ms", type=float, default=0, help="pause between stream chunks")
    parser.add_argument("--words", type=int, default=20, help="reply length in words (= tokens)")
    parser.add_argument("--require-key", default=None, help="reject any other API key with 401")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description="Fake OpenAI/Anthropic upstream")
    add_arguments(cli)
    args = cli.parse_args()
    serve(**{name: getattr(args, name) for name in OPTION_NAMES})
