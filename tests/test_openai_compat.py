"""/v1/chat/completions and /v1/models, with the official openai SDK as the client.

The SDK talks to the live ASGI server (tests/live_server.py); every provider
behind it is the fake upstream, whose replies are deterministic:
"[<upstream model>] <prompt> ..." padded to 20 words, one token per word.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from asgiref.sync import sync_to_async

from tests.payloads import WEATHER_TOOL

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)



def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(live_server_url, user_token) -> openai.OpenAI:
    with openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=user_token, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def analysis_rule(db):
    """A decisive operator rule (the seeded keyword rules are only hints)."""
    from providers.models import ModelEntry
    from routing.models import RoutingRule

    return RoutingRule.objects.create(
        name="analysis to openai", phrases=["analyze"], target=ModelEntry.objects.get(key="openai"), priority=1000
    )


def test_auto_routes_by_rule_and_answers_with_a_chat_completion(client, analysis_rule, request_logs):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=user("Please analyze the quarterly sales figures")
    )
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4-turbo"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("[gpt-4-turbo] Please analyze the quarterly sales figures")
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens == 20
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 20
    assert raw.headers["x-neuroroute-model"] == "openai"
    assert "analysis to openai" in raw.headers["x-neuroroute-route-reason"]
    [row] = request_logs(1)
    assert str(row.request_id) == raw.headers["x-request-id"]
    assert row.request_id.hex == completion.id.removeprefix("chatcmpl-")
    assert (row.endpoint, row.status, row.http_status, row.stream) == ("chat.completions", "ok", 200, False)
    assert (row.model_key, row.upstream_model, row.route_rule) == ("openai", "gpt-4-turbo", "analysis to openai")
    assert row.response == choice.message.content
    assert (row.prompt_tokens, row.completion_tokens) == (completion.usage.prompt_tokens, 20)
    assert row.client is not None and row.client.name == "alice-app"


def test_auto_without_a_matching_rule_uses_the_default_model(client, request_logs):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("Tell me a joke"))

    assert raw.headers["x-neuroroute-model"] == "local"
    assert raw.parse().model == "local-lmstudio"
    assert request_logs(1)[0].model_key == "local"


@pytest.mark.parametrize(
    ("model", "key", "upstream"),
    [("openai", "openai", "gpt-4-turbo"), ("gpt-4-turbo", "openai", "gpt-4-turbo"), ("claude-3-sonnet", "anthropic", "claude-3-sonnet")],
)
def test_model_may_be_a_registry_key_or_an_upstream_model_name(client, request_logs, model, key, upstream):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=user("Say something"))

    assert raw.headers["x-neuroroute-model"] == key
    assert raw.parse().model == upstream
    assert raw.parse().choices[0].message.content.startswith(f"[{upstream}] Say something")
    [row] = request_logs(1)
    assert (row.model_key, row.route_reason) == (key, f"requested model {model!r}")


def test_a_request_routed_to_anthropic_is_answered_in_openai_shape(client, request_logs):
    completion = client.chat.completions.create(
        model="anthropic",
        messages=[{"role": "system", "content": "Be brief."}, *user("Describe the sea")],
        max_tokens=5,
        stop=["never"],
    )

    assert completion.object == "chat.completion"
    assert completion.model == "claude-3-sonnet"
    assert completion.choices[0].message.content == "[claude-3-sonnet] Describe the sea ..."
    assert completion.choices[0].finish_reason == "length"  # Anthropic's max_tokens, in OpenAI's words
    assert completion.usage.completion_tokens == 5
    assert completion.usage.prompt_tokens == 5  # the fake counts words, system prompt included
    [row] = request_logs(1)
    assert (row.provider, row.completion_tokens) == ("anthropic", 5)


def test_sampling_parameters_reach_an_anthropic_model(client, request_logs):
    completion = client.chat.completions.create(
        model="anthropic", messages=user("Describe the sea"), temperature=1.5, top_p=0.9
    )

    assert completion.model == "claude-3-sonnet"
    assert request_logs(1)[0].status == "ok"


async def test_async_client(live_server_url, user_token, request_logs):
    async with openai.AsyncOpenAI(base_url=f"{live_server_url}/v1", api_key=user_token, max_retries=0) as client:
        completion = await client.chat.completions.create(model="local", messages=user("Hello async world"))
        chunks = [
            chunk
            async for chunk in await client.chat.completions.create(
                model="local", messages=user("Hello async stream"), stream=True
            )
        ]

    assert completion.choices[0].message.content.startswith("[local-lmstudio] Hello async world")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.startswith("[local-lmstudio] Hello async stream")
    rows = await sync_to_async(request_logs)(2)
    assert sorted((r.stream, r.status) for r in rows) == [(False, "ok"), (True, "ok")]


def test_streaming_with_usage(client, request_logs):
    stream = client.chat.completions.create(
        model="openai", messages=user("Stream me a story"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)  # the SDK stops at data: [DONE]

    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4-turbo" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    *content, final, usage_chunk = chunks
    assert final.choices[0].finish_reason == "stop" and final.choices[0].delta.content is None
    assert all(c.choices[0].finish_reason is None and c.usage is None for c in content)
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == 20
    text = "".join(c.choices[0].delta.content or "" for c in content)
    assert text.startswith("[gpt-4-turbo] Stream me a story ...")
    [row] = request_logs(1)
    assert (row.status, row.stream, row.response) == ("ok", True, text)
    assert (row.prompt_tokens, row.completion_tokens) == (usage_chunk.usage.prompt_tokens, 20)
    assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms


def test_streaming_without_usage_ends_with_finish_reason_then_done(live_server_url, user_token, request_logs):
    body = {"model": "local", "messages": user("Raw stream please"), "stream": True}
    response = httpx.post(
        f"{live_server_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {user_token}"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-neuroroute-model"] == "local"
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert events[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in event for event in events)
    assert request_logs(1)[0].stream


@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_tool_calls_pass_through(client, request_logs, model):
    completion = client.chat.completions.create(
        model=model, messages=user("What is the weather in Paris?"), tools=[WEATHER_TOOL], tool_choice="auto"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "San Francisco"}

    # The tool's result goes back as a `tool` message: a normal answer follows.
    followup = client.chat.completions.create(
        model=model,
        messages=[
            *user("What is the weather in Paris?"),
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
            *user("Thanks, summarise it"),
        ],
        tools=[WEATHER_TOOL],
    )
    assert followup.choices[0].finish_reason == "stop"
    rows = request_logs(2)
    assert len(rows) == 2 and '[tool call] get_weather({"city"' in rows[0].response


@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_streamed_tool_calls_pass_through(client, request_logs, model):
    stream = client.chat.completions.create(
        model=model, messages=user("Weather in Oslo?"), tools=[WEATHER_TOOL], stream=True
    )
    chunks = list(stream)

    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.tool_calls[0].function.name == "get_weather"
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or "" for c in chunks if c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"city": "San Francisco"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    [row] = request_logs(1)
    assert row.status == "ok" and "get_weather" in row.response and row.ttft_ms is not None


def test_images_need_a_vision_model(client, request_logs):
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            }
        ],
    )

    assert raw.headers["x-neuroroute-model"] in ("openai", "anthropic")  # local lacks vision
    assert "local" in request_logs(1)[0].decision["dropped"]


def test_models_lists_auto_then_every_enabled_key(client, request_logs):
    models = client.models.list()

    assert [m.id for m in models.data] == ["auto", "anthropic", "local", "openai"]
    assert all(m.object == "model" and isinstance(m.created, int) for m in models.data)
    assert {m.id: m.owned_by for m in models.data}["anthropic"] == "anthropic"
    assert request_logs(0, timeout=0) == []  # a listing is not a gateway request


def test_invalid_token_is_an_authentication_error(live_server_url, request_logs):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="nr-not-a-token", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))
    with pytest.raises(openai.AuthenticationError):
        client.models.list()

    assert caught.value.body["type"] == "authentication_error"
    assert caught.value.body["code"] == "invalid_api_key"
    [row] = request_logs(1)
    assert (row.status, row.http_status, row.client) == ("client_error", 401, None)


def test_missing_token_is_401_in_openai_shape(live_server_url, request_logs):
    response = httpx.post(f"{live_server_url}/v1/chat/completions", json={"model": "auto", "messages": user("hi")})

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "authentication_error"
    assert request_logs(1)[0].http_status == 401


def test_unknown_model_is_not_found(client, request_logs):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-99", messages=user("hi"))

    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.body["param"] == "model"
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("client_error", 404)
    assert str(row.request_id) == caught.value.response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"messages": []}, "messages"),
        ({"temperature": 5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "messages[0]"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_bad_input_is_a_bad_request(client, request_logs, overrides, param):
    body = {"model": "auto", "messages": user("hi"), **overrides}

    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=dict)

    assert caught.value.body["type"] == "invalid_request_error"
    assert caught.value.body["param"] == param
    [row] = request_logs(1)
    assert (row.status, row.http_status, row.endpoint) == ("client_error", 400, "chat.completions")


def test_unknown_fields_are_ignored(client, request_logs):
    body = {"model": "local", "messages": user("hi"), "frequency_penalty": 0.5, "seed": 7, "some_future_field": {}}

    assert client.post("/chat/completions", body=body, cast_to=dict)["object"] == "chat.completion"
    assert request_logs(1)[0].status == "ok"


def test_malformed_json_is_a_bad_request(live_server_url, user_token, request_logs):
    response = httpx.post(
        f"{live_server_url}/v1/chat/completions",
        content=b'{"model": "auto", "messages": [',
        headers={"Authorization": f"Bearer {user_token}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("client_error", 400)


def test_upstream_rejection_is_a_bad_request(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 400, "count": -1})

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="openai", messages=user("hi"))

    assert "upstream returned 400" in caught.value.message
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("upstream_error", 400)
    assert row.attempts[0]["model"] == "openai" and not any(attempt["ok"] for attempt in row.attempts)


def test_one_failing_model_falls_back_transparently(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 500, "model": "gpt-4-turbo", "count": -1})

    raw = client.chat.completions.with_raw_response.create(model="openai", messages=user("hi"))

    assert raw.headers["x-neuroroute-model"] == "anthropic"
    assert raw.parse().model == "claude-3-sonnet"
    assert "after openai failed" in raw.headers["x-neuroroute-route-reason"]
    assert request_logs(1)[0].status == "ok"


def test_upstream_outage_is_a_server_error(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 503, "count": -1})

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="local", messages=user("hi"))

    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "server_error"
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("upstream_error", 503)


def test_stream_failing_before_the_first_token_gets_an_error_status(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 400, "count": -1})

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="local", messages=user("hi"), stream=True)

    [row] = request_logs(1)
    assert (row.status, row.http_status, row.stream) == ("upstream_error", 400, True)


def test_stream_failing_midway_raises_in_the_sdk_and_logs_the_partial_answer(client, request_logs, upstream_faults):
    upstream_faults({"mode": "stream_error", "after": 3, "count": 1})

    stream = client.chat.completions.create(model="openai", messages=user("Tell me everything"), stream=True)
    received = []
    with pytest.raises(openai.APIError, match="Injected stream error"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    [row] = request_logs(1)
    assert row.status == "upstream_error"
    assert row.response == "".join(received) != ""


def test_oversized_body_is_413(live_server_url, user_token, request_logs, settings):
    content = "x" * (settings.NEUROROUTE["MAX_BODY_BYTES"] + 1)
    response = httpx.post(
        f"{live_server_url}/v1/chat/completions",
        json={"model": "auto", "messages": user(content)},
        headers={"Authorization": f"Bearer {user_token}"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert request_logs(1)[0].http_status == 413


def test_the_sdk_stream_helper_accumulates_text_and_tool_calls(client, request_logs):
    with client.chat.completions.stream(model="openai", messages=user("Say hi"), stream_options={"include_usage": True}) as stream:
        text = "".join(event.delta for event in stream if event.type == "content.delta")
        completion = stream.get_final_completion()
    with client.chat.completions.stream(model="anthropic", messages=user("Weather in Rome?"), tools=[WEATHER_TOOL]) as stream:
        tool_completion = stream.get_final_completion()

    assert completion.choices[0].message.content == text
    assert completion.usage.completion_tokens == 20
    [call] = tool_completion.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "San Francisco"})
    assert len(request_logs(2)) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_an_unexpected_failure_is_a_500_and_still_logged_once(client, request_logs, monkeypatch, stream):
    from routing import execution

    async def broken_complete(*args, **kwargs):
        raise RuntimeError("bug")

    async def broken_stream(*args, **kwargs):
        raise RuntimeError("bug")
        yield  # an async generator, like the real one

    # The live server runs in this process: the patch reaches its requests.
    monkeypatch.setattr(execution, "complete", broken_complete)
    monkeypatch.setattr(execution, "stream", broken_stream)

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="local", messages=user("hi"), stream=stream)

    assert caught.value.body == {"message": "Internal error", "type": "server_error", "param": None, "code": None}
    [row] = request_logs(1)
    assert (row.status, row.http_status, row.error) == ("error", 500, "RuntimeError: bug")


def test_wrong_method_is_405_in_openai_shape(live_server_url, user_token, request_logs):
    response = httpx.get(f"{live_server_url}/v1/chat/completions", headers={"Authorization": f"Bearer {user_token}"})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert request_logs(1)[0].http_status == 405


def test_answers_are_generated_anew_unless_the_client_opts_into_the_cache(client, request_logs):
    ask = {"model": "openai", "messages": user("What is the tallest mountain?")}
    client.chat.completions.create(**ask)
    client.chat.completions.create(**ask)
    opted = {"extra_headers": {"X-NeuroRoute-Cache": "on"}}
    client.chat.completions.create(**ask, **opted)  # stored
    client.chat.completions.create(**ask, **opted)  # served from the cache

    rows = sorted(request_logs(4), key=lambda row: row.created_at)
    assert [row.cache_hit for row in rows] == [False, False, False, True]
