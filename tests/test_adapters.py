"""Each provider adapter against the fake upstream, over real HTTP."""

from __future__ import annotations

import json

import pytest

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatRequest, ProviderSettings, UpstreamError
from providers.adapters.lmstudio import OpenAICompatibleAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.clients import adapter_for, close_transports
from tests.payloads import WEATHER_TOOL


def settings_for(kind: str, url: str, api_key: str = "test-key", read_timeout: float = 10.0) -> ProviderSettings:
    base_url = url if kind == "anthropic" else url + "/v1"
    return ProviderSettings(
        name=kind, kind=kind, base_url=base_url, api_key=api_key, connect_timeout=2.0, read_timeout=read_timeout
    )


KINDS = [("openai", OpenAIAdapter), ("openai_compatible", OpenAICompatibleAdapter), ("anthropic", AnthropicAdapter)]


@pytest.fixture
async def adapters(fake_upstream):
    yield {kind: adapter_for(settings_for(kind, fake_upstream.url)) for kind, _ in KINDS}
    await close_transports()


@pytest.fixture(autouse=True)
def _clear_faults(fake_upstream):
    import httpx

    yield
    httpx.delete(f"{fake_upstream.url}/_control/faults")


def chat(text: str, **extra) -> ChatRequest:
    return ChatRequest(
        model="gpt-4-turbo", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}], **extra
    )


@pytest.mark.parametrize(("kind", "cls"), KINDS)
async def test_registry_builds_the_adapter_for_each_kind(adapters, kind, cls):
    assert type(adapters[kind]) is cls


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_complete_returns_text_and_usage(adapters, kind):
    result = await adapters[kind].complete(chat("What is the capital of France?"))
    assert result.text.startswith("[gpt-4-turbo] What is the capital of France?")
    assert result.finish_reason == "stop"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_max_tokens_caps_the_answer(adapters, kind):
    result = await adapters[kind].complete(chat("Tell me a story", max_tokens=3))
    assert result.finish_reason == "length"
    assert result.completion_tokens == 3


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_stream_yields_the_whole_answer_with_usage(adapters, kind):
    whole = await adapters[kind].complete(chat("Stream me something"))
    deltas = [d async for d in adapters[kind].stream(chat("Stream me something"))]
    assert "".join(d.text for d in deltas) == whole.text
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert any(d.completion_tokens for d in deltas)
    assert any(d.prompt_tokens for d in deltas)


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_tool_calls_come_back_in_openai_shape(adapters, kind):
    result = await adapters[kind].complete(chat("What's the weather in Paris?", tools=[WEATHER_TOOL]))
    assert result.finish_reason == "tool_calls"
    call = result.tool_calls[0]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_streamed_tool_call_assembles(adapters, kind):
    deltas = [d async for d in adapters[kind].stream(chat("weather in Oslo?", tools=[WEATHER_TOOL]))]
    pieces = [call for d in deltas for call in (d.tool_calls or [])]
    assert pieces[0]["function"]["name"] == "get_weather"
    arguments = "".join(call["function"].get("arguments", "") for call in pieces)
    assert isinstance(json.loads(arguments), dict)


@pytest.mark.parametrize(
    ("fault", "kind_expected", "retryable"),
    [
        ("status code=429 retry_after=2", "rate_limit", True),
        ("status code=503", "unavailable", True),
        ("status code=500", "server", True),
        ("status code=400", "bad_request", False),
        ("status code=401", "auth", False),
        ("reset", "connect", True),
        ("malformed", "protocol", True),
    ],
)
@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_failures_become_one_error_type(adapters, kind, fault, kind_expected, retryable):
    with pytest.raises(UpstreamError) as caught:
        await adapters[kind].complete(chat(f"hi [[fault:{fault}]]"))
    assert caught.value.kind == kind_expected
    assert caught.value.retryable is retryable
    if "retry_after" in fault:
        assert caught.value.retry_after == 2


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_read_timeout_is_a_retryable_timeout(fake_upstream, kind):
    adapter = adapter_for(settings_for(kind, fake_upstream.url, read_timeout=0.2))
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.complete(chat("slow [[fault:delay ms=1500]]"))
    finally:
        await close_transports()
    assert caught.value.kind == "timeout" and caught.value.retryable


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
async def test_stream_cut_midway_raises_upstream_error(adapters, kind):
    received = []
    with pytest.raises(UpstreamError):
        async for delta in adapters[kind].stream(chat("cut [[fault:truncate after=3]]")):
            received.append(delta)
    assert received  # the first chunks arrived before the cut


async def test_anthropic_without_key_is_an_auth_error(fake_upstream):
    with pytest.raises(UpstreamError) as caught:
        adapter_for(settings_for("anthropic", fake_upstream.url, api_key=""))
    assert caught.value.kind == "auth"


async def test_lmstudio_needs_no_key(fake_upstream):
    adapter = adapter_for(settings_for("openai_compatible", fake_upstream.url, api_key=""))
    try:
        result = await adapter.complete(chat("hello"))
    finally:
        await close_transports()
    assert result.text


async def test_health_reports_a_dead_provider():
    adapter = adapter_for(settings_for("openai", "http://127.0.0.1:9"))
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.health()
    finally:
        await close_transports()
    assert caught.value.kind == "connect"
