"""Fuzzed bodies for POST /prompt and /route: never a 5xx, and every 4xx explains itself in JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.logwriter import request_log_writer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    # The client and token are the same for every example, which is fine.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits orjson refuses the body
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "\x00", "openai", "auto", "cost", "[[not-a-fault]]", "x" * 5000])
)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.sampled_from(["openai", "anthropic", "local", "nope", "gpt-4-turbo"]),
        "priority": json_values | st.sampled_from(["cost", "speed", "quality"]),
        "deadline_s": json_values | st.floats(min_value=-1, max_value=1000),
        "cache": json_values,
        "user_id": json_values,
        "surprise": json_values,
    },
)
prompt_bodies = st.fixed_dictionaries(
    {},
    optional={
        "prompt": json_values | st.text(min_size=1, max_size=200),
        "metadata": metadata | json_values,
        "system": json_values,
        "stream": json_values,
        "max_tokens": json_values | st.integers(min_value=-5, max_value=2_000_000),
        "temperature": json_values | st.floats(min_value=-1, max_value=3),
        "unknown_field": json_values,
    },
)


def encode(value) -> bytes:
    return json.dumps(value).encode()


raw_bodies = (
    prompt_bodies.map(encode)
    | json_values.map(encode)
    | st.binary(max_size=200)  # mostly invalid UTF-8 and invalid JSON
    | st.just(b'{"prompt": "caf\xe9"}')  # Latin-1, not UTF-8
    | st.just(b'{"prompt": "\\ud800"}')  # a lone surrogate escape
    | st.just(b'{"prompt": "' + b"y" * 500_000 + b'"}')  # huge but allowed
    | st.just(b"")
)


def assert_well_behaved(response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code == 200 and response["Content-Type"].startswith("text/event-stream"):
        b"".join(response.streaming_content)  # drain: the request log row is written at the end
        return
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    if response.status_code >= 400:
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.fixture
def post(client, user_token):
    def post(path: str, body: bytes):
        return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {user_token}")

    yield post
    request_log_writer.flush()  # before the test database is emptied


@FUZZ
@given(body=raw_bodies)
def test_fuzzed_prompt_bodies_never_cause_a_server_error(post, body):
    assert_well_behaved(post("/prompt", body))


@FUZZ
@given(body=raw_bodies)
def test_fuzzed_route_bodies_never_cause_a_server_error(post, body):
    assert_well_behaved(post("/route", body))
