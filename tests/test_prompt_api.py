"""The native API (/prompt and /route) through the live server, with httpx as the client."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def http(live_server_url, user_token) -> httpx.Client:
    with httpx.Client(base_url=live_server_url, headers={"Authorization": f"Bearer {user_token}"}, timeout=20) as client:
        yield client


def upstream_requests(fake_upstream) -> int:
    return httpx.get(f"{fake_upstream.url}/_control/stats").json()["requests"]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in filter(None, text.split("\n\n")):
        name, data = frame.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_prompt_answers_with_route_usage_and_latency(http, request_logs):
    response = http.post("/prompt", json={"prompt": "Tell me about the moon", "metadata": {"model": "openai"}})

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"request_id", "model_used", "response", "latency_ms", "token_usage", "route", "cached"}
    assert (body["model_used"], body["upstream_model"], body["cached"]) == ("openai", "gpt-4-turbo", False)
    assert body["response"].startswith("[gpt-4-turbo] Tell me about the moon ...")
    assert body["token_usage"]["completion_tokens"] == 20
    usage = body["token_usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["latency_ms"] > 0
    assert body["route"] == {"model": "openai", "reason": "requested model 'openai'", "rule": None}
    [row] = request_logs(1)
    assert str(row.request_id) == body["request_id"]
    assert (row.endpoint, row.status, row.model_key, row.response) == ("prompt", "ok", "openai", body["response"])


def test_second_identical_prompt_is_served_from_the_cache(http, request_logs, fake_upstream):
    first = http.post("/prompt", json={"prompt": "What is the capital of France?"}).json()
    calls = upstream_requests(fake_upstream)
    second = http.post("/prompt", json={"prompt": "What is the capital of France?"}).json()

    assert (first["cached"], second["cached"]) == (False, True)
    assert second["response"] == first["response"]
    assert upstream_requests(fake_upstream) == calls  # no upstream call the second time
    assert [row.cache_hit for row in request_logs(2)] == [False, True]


def test_prompt_streams_route_deltas_then_done(http, request_logs):
    response = http.post("/prompt", json={"prompt": "Stream a poem", "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "route" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text.startswith("[local-lmstudio] Stream a poem ...")
    done = events[-1][1]
    assert done["model_used"] == "local" and done["token_usage"]["completion_tokens"] == 20
    [row] = request_logs(1)
    assert (row.status, row.stream, row.response) == ("ok", True, text)
    assert row.ttft_ms is not None


def test_route_is_a_dry_run(http, request_logs, fake_upstream):
    before = upstream_requests(fake_upstream)

    response = http.post("/route", json={"prompt": "Please summarize this", "metadata": {"model": "anthropic"}})

    assert response.status_code == 200
    body = response.json()
    assert body["route"]["model"] == "anthropic"
    assert body["explanation"]["upstream_model"] == "claude-3-sonnet"
    assert {"step", "trace", "scores", "tokens", "decision_ms"} <= set(body["explanation"])
    assert upstream_requests(fake_upstream) == before
    assert request_logs(0, timeout=0) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"metadata": {}}', id="missing prompt"),
        pytest.param(b'{"prompt": ""}', id="empty prompt"),
        pytest.param(b'{"prompt": "   \\n\\t "}', id="blank prompt"),
        pytest.param(b'{"prompt": 42}', id="prompt not a string"),
        pytest.param(b'{"prompt": ["a", "b"]}', id="prompt a list"),
        pytest.param(b'{"prompt": "hi", "temprature": 0.5}', id="unknown field"),
        pytest.param(b'{"prompt": "hi", "max_tokens": 0}', id="max_tokens zero"),
        pytest.param(b'{"prompt": "hi", "metadata": {"priority": "fastest"}}', id="unknown priority"),
        pytest.param(b'{"prompt": "hi"', id="malformed JSON"),
        pytest.param(b'["hi"]', id="not an object"),
        pytest.param(b'{"prompt": "caf\xe9"}', id="invalid UTF-8"),
        pytest.param(b"", id="empty body"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(http, request_logs, body):
    response = http.post("/prompt", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["message"]
    [row] = request_logs(1)
    assert (row.endpoint, row.status, row.http_status) == ("prompt", "client_error", 400)


def test_oversized_prompt_is_413(http, request_logs, settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "MAX_PROMPT_CHARS": 50}

    response = http.post("/prompt", json={"prompt": "x" * 51})

    assert response.status_code == 413
    assert "exceeds 50 characters" in response.json()["error"]["message"]
    assert request_logs(1)[0].http_status == 413


def test_oversized_body_is_413_and_logged(http, request_logs, settings):
    response = http.post("/prompt", json={"prompt": "x" * (settings.NEUROROUTE["MAX_BODY_BYTES"] + 1)})

    assert response.status_code == 413
    assert request_logs(1)[0].http_status == 413


def test_no_token_is_401(live_server_url, request_logs):
    response = httpx.post(f"{live_server_url}/prompt", json={"prompt": "hi"})

    assert response.status_code == 401
    assert response.json()["error"]["message"]
    [row] = request_logs(1)
    assert (row.status, row.http_status, row.client) == ("client_error", 401, None)


def test_failed_upstream_is_logged(http, request_logs, upstream_faults):
    upstream_faults({"mode": "status", "status": 400, "count": -1})  # permanent, on every model

    response = http.post("/prompt", json={"prompt": "hi"})

    assert response.status_code == 400
    assert "upstream returned 400" in response.json()["error"]["message"]
    [row] = request_logs(1)
    assert (row.status, row.http_status) == ("upstream_error", 400)
    assert row.attempts[0]["model"] == "local" and not any(attempt["ok"] for attempt in row.attempts)


def test_wrong_method_is_405_json_and_logged(http, request_logs):
    response = http.get("/prompt")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    [row] = request_logs(1)
    assert (row.endpoint, row.status, row.http_status) == ("prompt", "client_error", 405)


def test_client_leaving_a_slow_answer_is_logged_as_cancelled(live_server_url, user_token, request_logs):
    body = {"prompt": "take your time [[fault:delay ms=3000]]", "metadata": {"model": "openai", "cache": False}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_server_url}/prompt", json=body, headers={"Authorization": f"Bearer {user_token}"}, timeout=0.5
        )

    [row] = request_logs(1)
    assert (row.status, row.http_status, row.stream) == ("cancelled", 499, False)
