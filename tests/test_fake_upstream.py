"""The bundled fake upstream, exercised through the official openai and anthropic SDKs.

Plain pytest: no Django needed (run with ``-p no:django``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest

from providers.fake_upstream import FakeUpstream

USER = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL_OPENAI = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
WEATHER_TOOL_ANTHROPIC = [{"name": "get_weather", "description": "Weather for a city",
                           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                            "required": ["city"]}}]
# A dropped connection is the SDK's APIConnectionError, except mid-stream in anthropic, which lets httpx2's through.
DROPPED = (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError)


@pytest.fixture(autouse=True)
def _point_providers_at_fake() -> Iterator[None]:
    """Shadows the Django-settings fixture of tests/conftest.py: these tests need no Django."""
    yield


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[str]:
    """A FakeUpstream on a free port in a background thread; yields its base URL."""
    server = FakeUpstream(port=0, **options)
    try:
        yield server.start_in_thread()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving() as url:
        yield url


@pytest.fixture(scope="module")
def tuned_url() -> Iterator[str]:
    """A server with latency, few paced chunks and a required key."""
    with serving(latency_ms=150, chunks=5, chunk_interval_ms=20, require_key="sekret") as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "base_url" in request.fixturenames:
        url = request.getfixturevalue("base_url")
        httpx.delete(f"{url}/_control/faults")
        httpx.post(f"{url}/_control/reset")


def oai(url: str, key: str = "test-key") -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{url}/v1", max_retries=0, timeout=10)


def ant(url: str, key: str = "test-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=url, max_retries=0, timeout=10)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def add_faults(url: str, *faults: dict[str, Any], **extra: Any) -> None:
    httpx.post(f"{url}/_control/faults", json={"faults": list(faults), **extra}).raise_for_status()


def stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_control/stats").json()


# --------------------------------------------------------------------------- basics

def test_health_and_models(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    ids = [m.id for m in oai(base_url).models.list()]
    assert {"local-lmstudio", "gpt-4-turbo", "claude-3-sonnet"} <= set(ids)


def test_openai_sync_completion_is_deterministic(base_url: str) -> None:
    resp = oai(base_url).chat.completions.create(model="gpt-4-turbo", messages=USER)
    assert resp.object == "chat.completion" and resp.model == "gpt-4-turbo" and resp.id.startswith("chatcmpl-")
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content.startswith("[gpt-4-turbo] Hello there ...")
    assert len(choice.message.content.split()) == 20
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (2, 20, 22)


def test_openai_max_tokens_caps_with_length(base_url: str) -> None:
    resp = oai(base_url).chat.completions.create(model="local-lmstudio", messages=USER, max_tokens=3)
    assert resp.choices[0].message.content == "[local-lmstudio] Hello there"
    assert resp.choices[0].finish_reason == "length" and resp.usage.completion_tokens == 3


def test_openai_stream_with_usage(base_url: str) -> None:
    full = oai(base_url).chat.completions.create(model="gpt-4-turbo", messages=USER).choices[0].message.content
    chunks = list(oai(base_url).chat.completions.create(
        model="gpt-4-turbo", messages=USER, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].object == "chat.completion.chunk"
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 20 and "".join(content) == full
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20
    assert stats(base_url)["streams"] == 1


def test_openai_stream_without_usage_has_no_usage_chunk(base_url: str) -> None:
    chunks = list(oai(base_url).chat.completions.create(model="m", messages=USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_async_completion_and_stream(base_url: str) -> None:
    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(api_key="k", base_url=f"{base_url}/v1", max_retries=0) as client:
            resp = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            return resp.choices[0].message.content, text

    full, streamed = asyncio.run(run())
    assert full == streamed and full.startswith("[gpt-4o-mini] Hello there")


def test_openai_tool_call(base_url: str) -> None:
    msgs = user("What's the WEATHER in Paris?")
    resp = oai(base_url).chat.completions.create(model="gpt-4-turbo", messages=msgs, tools=WEATHER_TOOL_OPENAI)
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls" and call.id.startswith("call_")
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "San Francisco"}

    stream = oai(base_url).chat.completions.create(model="gpt-4-turbo", messages=msgs, tools=WEATHER_TOOL_OPENAI,
                                                   stream=True)
    name, args, finish = "", "", None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            name += (delta.function.name or "") if delta.function else ""
            args += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert (name, json.loads(args), finish) == ("get_weather", {"city": "San Francisco"}, "tool_calls")


def test_openai_tools_without_weather_or_with_tool_choice_none_answer_text(base_url: str) -> None:
    client = oai(base_url)
    plain = client.chat.completions.create(model="m", messages=USER, tools=WEATHER_TOOL_OPENAI)
    none = client.chat.completions.create(model="m", messages=user("weather?"), tools=WEATHER_TOOL_OPENAI,
                                          tool_choice="none")
    assert plain.choices[0].finish_reason == none.choices[0].finish_reason == "stop"
    assert plain.choices[0].message.tool_calls is None


def test_anthropic_sync_message_with_block_system_and_content(base_url: str) -> None:
    msg = ant(base_url).messages.create(
        model="claude-3-haiku", max_tokens=100, system=[{"type": "text", "text": "You are terse"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Block one"},
                                               {"type": "text", "text": "block two"}]}])
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == "claude-3-haiku" and msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.content[0].type == "text" and msg.content[0].text.startswith("[claude-3-haiku] Block one block two ...")
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 20)


def test_anthropic_max_tokens(base_url: str) -> None:
    msg = ant(base_url).messages.create(model="claude-3-sonnet", max_tokens=2, system="Be brief", messages=USER)
    assert msg.content[0].text == "[claude-3-sonnet] Hello" and msg.stop_reason == "max_tokens"


def test_anthropic_stream_helper(base_url: str) -> None:
    full = ant(base_url).messages.create(model="claude-3-sonnet", max_tokens=100, messages=USER).content[0].text
    with ant(base_url).messages.stream(model="claude-3-sonnet", max_tokens=100, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 20 and "".join(pieces) == full
    assert final.content[0].text == full and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 20)


def test_anthropic_raw_event_sequence(base_url: str) -> None:
    events = [e.type for e in ant(base_url).messages.create(
        model="claude-3-sonnet", max_tokens=100, messages=USER, stream=True)]
    assert events == ["message_start", "content_block_start", *["content_block_delta"] * 20,
                      "content_block_stop", "message_delta", "message_stop"]
    raw = httpx.post(f"{base_url}/v1/messages", headers={"x-api-key": "k"},
                     json={"model": "c", "max_tokens": 5, "messages": USER, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert "event: ping\n" in raw.text and raw.text.index("event: message_start") == 0


def test_anthropic_tool_use(base_url: str) -> None:
    msgs = user("weather in Paris?")
    msg = ant(base_url).messages.create(model="claude-3-sonnet", max_tokens=100, messages=msgs,
                                        tools=WEATHER_TOOL_ANTHROPIC)
    block = msg.content[0]
    assert msg.stop_reason == "tool_use" and block.type == "tool_use" and block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "San Francisco"})
    with ant(base_url).messages.stream(model="claude-3-sonnet", max_tokens=100, messages=msgs,
                                       tools=WEATHER_TOOL_ANTHROPIC) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "San Francisco"}


def test_anthropic_count_tokens(base_url: str) -> None:
    count = ant(base_url).messages.count_tokens(model="claude-3-sonnet", system="a b", messages=user("c d e"))
    assert count.input_tokens == 5


def test_async_start_on_callers_loop() -> None:
    async def run() -> str:
        server = FakeUpstream()
        url = await server.start()
        try:
            client = anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0)
            async with client.messages.stream(model="claude-3-haiku", max_tokens=50, messages=USER) as stream:
                return (await stream.get_final_message()).content[0].text
        finally:
            await server.aclose()

    assert asyncio.run(run()).startswith("[claude-3-haiku] Hello there")


def test_concurrent_streams() -> None:
    async def run(url: str) -> list[str]:
        async with openai.AsyncOpenAI(api_key="k", base_url=f"{url}/v1", max_retries=0) as client:
            async def one(i: int) -> str:
                stream = await client.chat.completions.create(model="m", messages=user(f"n{i}"), stream=True)
                return "".join([c.choices[0].delta.content or "" async for c in stream])
            return await asyncio.gather(*(one(i) for i in range(100)))

    with serving(chunks=5, chunk_interval_ms=50) as url:
        texts = asyncio.run(run(url))
        assert [t.split()[1] for t in texts] == [f"n{i}" for i in range(100)]
        s = stats(url)
        assert s["streams"] == 100 and s["max_in_flight"] > 20


def test_port_in_use_raises(base_url: str) -> None:
    with pytest.raises(OSError):
        FakeUpstream(port=int(base_url.rsplit(":", 1)[1])).start_in_thread()


# --------------------------------------------------------------------------- validation and auth

@pytest.mark.parametrize("body", [b"{not json", b'{"messages": [{"role": "user", "content": "x"}]}',
                                  b'{"model": "m"}', b'{"model": "m", "messages": []}'])
def test_invalid_requests_get_protocol_error_shapes(base_url: str, body: bytes) -> None:
    r = httpx.post(f"{base_url}/v1/chat/completions", content=body, headers={"Authorization": "Bearer k"})
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(f"{base_url}/v1/messages", content=body, headers={"x-api-key": "k"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["message"]


def test_sdks_raise_bad_request(base_url: str) -> None:
    with pytest.raises(openai.BadRequestError):
        oai(base_url).chat.completions.create(model="m", messages=[])
    with pytest.raises(anthropic.BadRequestError):
        ant(base_url).messages.create(model="m", max_tokens=5, messages=[])


def test_missing_key_is_401(base_url: str) -> None:
    body = {"model": "m", "messages": USER}
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = httpx.post(f"{base_url}/v1/messages", json=body)
    assert r.status_code == 401 and r.json() == {
        "type": "error", "error": {"type": "authentication_error", "message": "Missing API key"}}


def test_require_key(tuned_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        oai(tuned_url, key="wrong").chat.completions.create(model="m", messages=USER)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        ant(tuned_url, key="wrong").messages.create(model="m", max_tokens=5, messages=USER)
    assert exc.value.body["error"]["type"] == "authentication_error"
    assert oai(tuned_url, key="sekret").chat.completions.create(model="m", messages=USER).choices
    r = httpx.post(f"{tuned_url}/v1/messages", headers={"x-api-key": "sekret"},
                   json={"model": "m", "max_tokens": 5, "messages": USER})
    assert r.status_code == 200


def test_latency_and_chunk_pacing(tuned_url: str) -> None:
    start = time.perf_counter()
    stream = oai(tuned_url, key="sekret").chat.completions.create(model="m", messages=USER, stream=True)
    first = next(iter(stream))
    ttfb = time.perf_counter() - start
    rest = list(stream)
    total = time.perf_counter() - start
    assert first.choices[0].delta.role == "assistant"
    assert sum(1 for c in rest if c.choices[0].delta.content) == 5
    assert ttfb >= 0.15 and total >= 0.15 + 4 * 0.02


# --------------------------------------------------------------------------- faults

def test_status_marker_maps_to_sdk_exceptions(base_url: str) -> None:
    with pytest.raises(openai.RateLimitError) as exc:
        oai(base_url).chat.completions.create(
            model="m", messages=user("hi [[fault:status code=429 retry_after=1 retry_after_ms=1500]]"))
    headers = exc.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1500")
    assert exc.value.body["type"] == "rate_limit_error"
    with pytest.raises(openai.InternalServerError):
        oai(base_url).chat.completions.create(model="m", messages=user("[[fault:status code=503]]"), stream=True)
    with pytest.raises(anthropic.RateLimitError):
        ant(base_url).messages.create(model="c", max_tokens=5, messages=user("[[fault:status code=429]]"))
    with pytest.raises(anthropic.OverloadedError) as aexc:
        ant(base_url).messages.create(model="c", max_tokens=5, messages=user("[[fault:status code=529]]"))
    assert aexc.value.body["error"]["type"] == "overloaded_error"
    assert stats(base_url)["faults_applied"] == {"status": 4}


def test_control_queue_with_model_filter_and_count(base_url: str) -> None:
    add_faults(base_url, {"mode": "status", "status": 503, "model": "claude-*", "count": 2})
    assert oai(base_url).chat.completions.create(model="gpt-4-turbo", messages=USER).choices
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError) as exc:
            ant(base_url).messages.create(model="claude-3-sonnet", max_tokens=5, messages=USER)
        assert exc.value.status_code == 503
    assert ant(base_url).messages.create(model="claude-3-sonnet", max_tokens=5, messages=USER).content
    s = stats(base_url)
    assert s["faults_applied"] == {"status": 2} and s["faults_pending"] == []
    assert s["by_model"] == {"gpt-4-turbo": 1, "claude-3-sonnet": 3}
    assert s["by_path"] == {"/v1/chat/completions": 1, "/v1/messages": 3}


def test_marker_wins_over_queue(base_url: str) -> None:
    add_faults(base_url, {"mode": "status", "status": 500})
    start = time.perf_counter()
    oai(base_url).chat.completions.create(model="m", messages=user("[[fault:delay ms=250]]"))
    assert time.perf_counter() - start >= 0.25
    assert len(stats(base_url)["faults_pending"]) == 1
    with pytest.raises(openai.InternalServerError):
        oai(base_url).chat.completions.create(model="m", messages=USER)


def test_probability_fault_until_cleared(base_url: str) -> None:
    add_faults(base_url, {"mode": "status", "status": 503, "probability": 0.5, "count": -1}, seed=7)
    body = {"model": "m", "messages": USER}
    with httpx.Client(headers={"Authorization": "Bearer k"}) as client:
        codes = [client.post(f"{base_url}/v1/chat/completions", json=body).status_code for _ in range(200)]
        assert set(codes) == {200, 503} and 60 < codes.count(503) < 140
        httpx.delete(f"{base_url}/_control/faults")
        assert all(client.post(f"{base_url}/v1/chat/completions", json=body).status_code == 200 for _ in range(20))


def test_control_rejects_unknown_mode_and_reset_clears_counters(base_url: str) -> None:
    assert httpx.post(f"{base_url}/_control/faults", json={"faults": [{"mode": "explode"}]}).status_code == 400
    assert httpx.post(f"{base_url}/_control/faults", json={"faults": [{"mode": "delay", "count": 0}]}).status_code == 400
    oai(base_url).chat.completions.create(model="m", messages=USER)
    assert stats(base_url)["requests"] == 1
    httpx.post(f"{base_url}/_control/reset")
    assert stats(base_url)["requests"] == 0 and stats(base_url)["by_model"] == {}


def test_delay_from_queue(base_url: str) -> None:
    add_faults(base_url, {"mode": "delay", "ms": 250})
    start = time.perf_counter()
    ant(base_url).messages.create(model="c", max_tokens=5, messages=USER)
    assert time.perf_counter() - start >= 0.25


@pytest.mark.parametrize("stream", [False, True])
def test_reset_drops_connection(base_url: str, stream: bool) -> None:
    with pytest.raises(openai.APIConnectionError):
        oai(base_url).chat.completions.create(model="m", messages=user("[[fault:reset]]"), stream=stream)
    with pytest.raises(anthropic.APIConnectionError):
        ant(base_url).messages.create(model="c", max_tokens=5, messages=user("[[fault:reset]]"), stream=stream)


def test_truncate_non_streaming(base_url: str) -> None:
    with pytest.raises(openai.APIConnectionError):
        oai(base_url).chat.completions.create(model="m", messages=user("[[fault:truncate]]"))
    with pytest.raises(anthropic.APIConnectionError):
        ant(base_url).messages.create(model="c", max_tokens=50, messages=user("[[fault:truncate]]"))


def test_truncate_streams_after_n_chunks(base_url: str) -> None:
    got: list[str] = []
    with pytest.raises(DROPPED):
        for chunk in oai(base_url).chat.completions.create(
                model="m", messages=user("[[fault:truncate after=3]]"), stream=True):
            got.append(chunk.choices[0].delta.content)
    assert len([c for c in got if c]) == 3
    pieces: list[str] = []
    with pytest.raises(DROPPED), ant(base_url).messages.stream(
            model="c", max_tokens=50, messages=user("[[fault:truncate after=2]]")) as stream:
        pieces.extend(stream.text_stream)
    assert len(pieces) == 2


def test_truncate_from_queue_has_no_done_marker(base_url: str) -> None:
    add_faults(base_url, {"mode": "truncate", "after": 1})
    body = {"model": "m", "messages": USER, "stream": True}
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
            "POST", f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}) as r:
        for part in r.iter_bytes():
            received += part
    assert received.count(b"data: ") == 2 and b"[DONE]" not in received


def test_malformed(base_url: str) -> None:
    with pytest.raises(ValueError):
        oai(base_url).chat.completions.create(model="m", messages=user("[[fault:malformed]]"))
    with pytest.raises(ValueError):
        list(oai(base_url).chat.completions.create(model="m", messages=user("[[fault:malformed]]"), stream=True))
    with pytest.raises(ValueError), ant(base_url).messages.stream(
            model="c", max_tokens=5, messages=user("[[fault:malformed after=1]]")) as stream:
        list(stream.text_stream)
    r = httpx.post(f"{base_url}/v1/messages", headers={"x-api-key": "k"},
                   json={"model": "c", "max_tokens": 5, "messages": user("[[fault:malformed]]")})
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


def test_slow_stream_overrides_interval(base_url: str) -> None:
    start = time.perf_counter()
    with ant(base_url).messages.stream(model="c", max_tokens=100,
                                       messages=user("hi [[fault:slow_stream interval_ms=20]]")) as stream:
        text = "".join(stream.text_stream)
    assert time.perf_counter() - start >= 19 * 0.02
    assert text.startswith("[c] hi ...") and "fault" not in text


def test_stream_error_event(base_url: str) -> None:
    got: list[str | None] = []
    with pytest.raises(openai.APIError, match="Injected stream error"):
        for chunk in oai(base_url).chat.completions.create(
                model="m", messages=user("[[fault:stream_error after=2]]"), stream=True):
            got.append(chunk.choices[0].delta.content)
    assert len([c for c in got if c]) == 2
    with pytest.raises(anthropic.APIStatusError) as exc, ant(base_url).messages.stream(
            model="c", max_tokens=50, messages=user("[[fault:stream_error]]")) as stream:
        list(stream.text_stream)
    assert exc.value.body["error"]["type"] == "overloaded_error"
