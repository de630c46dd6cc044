"""/v1/messages, with the official anthropic SDK as the client.

The NeuroRoute token goes where the Anthropic key would. Behind the live
server every provider is the fake upstream: "[<upstream model>] <prompt> ..."
padded to 20 words, one token per word.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.payloads import ANTHROPIC_WEATHER_TOOL

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(live_server_url, user_token) -> anthropic.Anthropic:
    with anthropic.Anthropic(base_url=live_server_url, api_key=user_token, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def analysis_rule(db):
    """A decisive operator rule (the seeded keyword rules are only hints)."""
    from providers.models import ModelEntry
    from routing.models import RoutingRule

    return RoutingRule.objects.create(
        name="analysis to openai", phrases=["analyze"], target=ModelEntry.objects.get(key="openai"), priority=1000
    )


def test_answers_with_a_message(client, request_logs):
    raw = client.messages.with_raw_response.create(model="local", max_tokens=100, messages=user("Hello there"))
    message = raw.parse()

    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "local-lmstudio"
    [block] = message.content
    assert block.type == "text" and block.text.startswith("[local-lmstudio] Hello there ...")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 20 and message.usage.input_tokens > 0
    assert raw.headers["x-neuroroute-model"] == "local"
    [row] = request_logs(1)
    assert str(row.request_id) == raw.headers["x-request-id"]
    assert row.request_id.hex == message.id.removeprefix("msg_")
    assert (row.endpoint, row.status, row.http_status, row.stream) == ("messages", "ok", 200, False)
    assert row.response == block.text
    assert (row.prompt_tokens, row.completion_tokens) == (message.usage.input_tokens, 20)
    assert row.client.name == "alice-app"


def test_auto_is_routed(client, analysis_rule, request_logs):
    routed = client.messages.with_raw_response.create(
        model="auto", max_tokens=100, messages=user("Please analyze this contract")
    )
    default = client.messages.with_raw_response.create(model="auto", max_tokens=100, messages=user("Tell me a joke"))

    assert (routed.headers["x-neuroroute-model"], routed.parse().model) == ("openai", "gpt-4-turbo")
    assert "analysis to openai" in routed.headers["x-neuroroute-route-reason"]
    assert (default.headers["x-neuroroute-model"], default.parse().model) == ("local", "local-lmstudio")
    assert [row.model_key for row in request_logs(2)] == ["openai", "local"]


def test_x_api_key_and_anthropic_version_headers_are_accepted(live_server_url, user_token, request_logs):
    response = httpx.post(
        f"{live_server_url}/v1/messages",
        json={"model": "anthropic", "max_tokens": 50, "messages": user("hi")},
        headers={"x-api-key": user_token, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 200
    assert response.json()["model"] == "claude-3-sonnet"
    assert response.headers["request-id"].startswith("req_")
    assert request_logs(1)[0].status == "ok"


def test_a_request_routed_to_openai_is_answered_in_anthropic_shape(client, request_logs, fake_upstream):
    message = client.messages.create(
        model="openai",
        max_tokens=4,
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}],
        messages=[
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": [{"type": "text", "text": "First answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "Second question"}]},
        ],
        stop_sequences=["never"],
    )

    assert message.model == "gpt-4-turbo"
    assert message.content[0].text == "[gpt-4-turbo] Second question ..."
    assert message.stop_reason == "max_tokens"  # OpenAI's "length"
    assert message.usage.output_tokens == 4
    assert message.usage.input_tokens == 12  # the fake counts words of every message, system included
    [row] = request_logs(1)
    assert row.provider == "openai"
    assert row.prompt.startswith("system: You are terse.\n\nAnswer in English.\nuser: First question")


@pytest.mark.parametrize("model", ["anthropic", "openai"])
def test_streaming(client, request_logs, model):
    with client.messages.stream(model=model, max_tokens=100, messages=user("Stream me a story")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    upstream = {"anthropic": "claude-3-sonnet", "openai": "gpt-4-turbo"}[model]
    assert text.startswith(f"[{upstream}] Stream me a story ...")
    assert final.model == upstream and final.id.startswith("msg_")
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 20 and final.usage.input_tokens > 0
    [row] = request_logs(1)
    assert (row.status, row.stream, row.response) == ("ok", True, text)
    assert (row.prompt_tokens, row.completion_tokens) == (final.usage.input_tokens, 20)
    assert row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


def test_stream_events_follow_anthropics_sequence(live_server_url, user_token, request_logs):
    body = {"model": "local", "max_tokens": 100, "messages": user("Raw events please"), "stream": True}
    response = httpx.post(f"{live_server_url}/v1/messages", json=body, headers={"x-api-key": user_token})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in filter(None, response.text.split("\n\n")):
        name, data = frame.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    assert events[0][1]["message"]["model"] == "local-lmstudio"
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 20
    assert request_logs(1)[0].stream


@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_tool_use(client, request_logs, model):
    message = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[ANTHROPIC_WEATHER_TOOL],
        tool_choice={"type": "auto"},
        messages=user("What is the weather in Paris?"),
    )

    assert message.stop_reason == "tool_use"
    [tool_use] = message.content
    assert tool_use.type == "tool_use" and tool_use.id
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "San Francisco"})

    followup = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[ANTHROPIC_WEATHER_TOOL],
        messages=[
            *user("What is the weather in Paris?"),
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C and sunny"},
                    {"type": "text", "text": "Thanks, summarise it"},
                ],
            },
        ],
    )
    assert followup.stop_reason == "end_turn"
    assert "Thanks, summarise it" in followup.content[0].text
    rows = request_logs(2)
    assert len(rows) == 2 and '[tool call] get_weather({"city"' in rows[0].response
    assert "tool: 18C and sunny" in rows[1].prompt


@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_streamed_tool_use(client, request_logs, model):
    with client.messages.stream(
        model=model, max_tokens=200, tools=[ANTHROPIC_WEATHER_TOOL], messages=user("Weather in Oslo?")
    ) as stream:
        final = stream.get_final_message()

    [tool_use] = final.content
    assert (tool_use.type, tool_use.name, tool_use.input) == ("tool_use", "get_weather", {"city": "San Francisco"})
    assert final.stop_reason == "tool_use"
    [row] = request_logs(1)
    assert row.status == "ok" and "get_weather" in row.response


def test_images_need_a_vision_model(client, request_logs):
    raw = client.messages.with_raw_response.create(
        model="auto",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "text", "text": "What is in this picture?"},
                ],
            }
        ],
    )

    assert raw.headers["x-neuroroute-model"] in ("openai", "anthropic")  # local lacks vision
    assert "local" in request_logs(1)[0].decision["dropped"]


def test_invalid_key_is_an_authentication_error(live_server_url, request_logs):
    client = anthropic.Anthropic(base_url=live_server_url, api_key="nr-not-a-token", max_retries=0)

    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model="auto", max_tokens=10, messages=user("hi"))

    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "Invalid or revoked token"}}
    [row] = request_logs(1)
    assert (row.endpoint, row.status, row.http_status) == ("messages", "client_error", 401)


def test_missing_key_is_401(live_server_url, request_logs):
    response = httpx.post(f"{live_server_url}/v1/messages", json={"model": "auto", "max_tokens": 5, "messages": user("hi")})

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert request_logs(1)[0].http_status == 401


def test_unknown_model_is_not_found(client, request_logs):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-99", max_tokens=10, messages=user("hi"))

    assert caught.value.body["error"]["type"] == "not_found_error"
    assert request_logs(1)[0].http_status == 404


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
        ({"system": 5}, "system"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
    ],
)
def test_bad_input_is_a_bad_request(client, request_logs, overrides, message):
    body = {"model": "auto", "max_tokens": 10, "messages": user("hi"), **overrides}
    body = {key: value for key, value in body.items() if value is not None}

    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", body=body, cast_to=dict)

    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith(message)
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("client_error", 400)


def test_malformed_json_is_a_bad_request(live_server_url, user_token, request_logs):
    response = httpx.post(
        f"{live_server_url}/v1/messages", content=b"{not json", headers={"x-api-key": user_token}
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert request_logs(1)[0].status == "client_error"


def test_upstream_rejection_is_a_bad_request(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 400, "count": -1})

    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="anthropic", max_tokens=10, messages=user("hi"))

    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("upstream_error", 400)


def test_upstream_outage_is_overloaded(client, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 503, "count": -1})

    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="local", max_tokens=10, messages=user("hi"))

    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert request_logs(1)[0].status == "upstream_error"


def test_stream_failing_midway_is_an_error_event(client, request_logs, upstream_faults):
    upstream_faults({"mode": "stream_error", "after": 3, "count": 1})

    received = []
    stream = client.messages.stream(model="anthropic", max_tokens=100, messages=user("Tell me everything"))
    with pytest.raises(anthropic.APIStatusError, match="Injected stream error"), stream as events:
        received.extend(events.text_stream)

    [row] = request_logs(1)
    assert row.status == "upstream_error"
    assert row.response == "".join(received) != ""
