"""A client that leaves in the middle of a stream.

Django cancels the streaming task when the client disconnects; the stream's
one log row must still be written, marked "cancelled", with the partial
answer and the time to first token, and the upstream stream must be closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
from asgiref.sync import sync_to_async

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

STORY = [{"role": "user", "content": "Tell me a long story"}]
STREAMS = {  # endpoint name in the log: (path, streaming body routed to the openai model)
    "chat.completions": ("/v1/chat/completions", {"model": "openai", "messages": STORY, "stream": True}),
    "messages": ("/v1/messages", {"model": "openai", "max_tokens": 500, "messages": STORY, "stream": True}),
    "prompt": ("/prompt", {"prompt": "Tell me a long story", "stream": True, "metadata": {"model": "openai"}}),
}


def upstream_in_flight(fake_upstream) -> int:
    return httpx.get(f"{fake_upstream.url}/_control/stats").json()["in_flight"]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("endpoint", list(STREAMS))
def test_client_leaving_midway_is_logged_as_cancelled(
    live_server_url, user_token, upstream_faults, request_logs, fake_upstream, endpoint
):
    path, body = STREAMS[endpoint]
    upstream_faults({"mode": "slow_stream", "interval_ms": 250, "count": 1})
    received = b""
    with httpx.Client(timeout=10) as http, http.stream(
        "POST", f"{live_server_url}{path}", json=body, headers={"Authorization": f"Bearer {user_token}"}
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
            if b"long" in received:  # the answer's fifth word
                break  # leaving the block closes the connection mid-stream

    [row] = request_logs(1)
    assert row.endpoint == endpoint
    assert (row.status, row.http_status, row.stream) == ("cancelled", 499, True)
    # The start of the answer, short of its 20 words (streamed a word every 250 ms).
    assert row.response.startswith("[gpt-4-turbo] Tell me a long")
    assert len(row.response.split()) < 20
    assert row.ttft_ms is not None and row.ttft_ms > 0
    # The upstream stream was closed too, not left running to the end.
    assert wait_until(lambda: upstream_in_flight(fake_upstream) == 0, timeout=2)
    time.sleep(0.3)
    assert len(request_logs(2, timeout=0)) == 1  # and logged exactly once


@pytest.mark.parametrize("endpoint", ["chat.completions", "messages"])
def test_client_leaving_before_the_first_token_is_logged_as_cancelled(
    live_server_url, user_token, upstream_faults, request_logs, fake_upstream, endpoint
):
    path, body = STREAMS[endpoint]
    upstream_faults({"mode": "delay", "ms": 3000, "count": 1})

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_server_url}{path}", json=body, headers={"Authorization": f"Bearer {user_token}"}, timeout=0.5
        )

    [row] = request_logs(1)
    assert (row.endpoint, row.status, row.http_status) == (endpoint, "cancelled", 499)
    assert (row.response, row.ttft_ms) == ("", None)
    time.sleep(0.3)
    assert len(request_logs(2, timeout=0)) == 1


# Django only closes its own wrapper around a streamed body when the client
# leaves while a chunk is being sent, then calls response.close(): the Relay
# must still log once and close the upstream stream.


async def relay_for(texts: list[str]):
    """A Relay over a fake upstream of `texts`, its first delta read as the views do."""
    from providers.adapters.base import StreamDelta
    from routing import gateway
    from routing.decision import RouteRequest
    from routing.gateway import GatewayCall
    from routing.openai_compat import ChunkWriter
    from routing.streaming import Relay

    call = GatewayCall(
        endpoint="chat.completions",
        client=None,
        route_request=RouteRequest(messages=STORY, prompt_text=STORY[0]["content"], requested_model="local"),
        stream=True,
    )
    await gateway.prepare(call)
    call.execution.model = call.decision.model
    closed = asyncio.Event()

    async def upstream():
        try:
            for text in texts:
                yield StreamDelta(text=text)
        finally:
            closed.set()

    deltas = upstream()
    first = await anext(deltas)
    return Relay(call, deltas, first, ChunkWriter(call, include_usage=False)), closed


async def test_a_body_left_suspended_is_logged_once_and_closes_upstream(request_logs):
    from routing.streaming import sse_response

    relay, upstream_closed = await relay_for(["Once ", "upon ", "a ", "time"])
    response = sse_response(relay, {})
    async with contextlib.aclosing(aiter(response)) as body:  # as Django's ASGIHandler reads it
        await anext(body)
        await anext(body)
    await sync_to_async(response.close)()

    await asyncio.wait_for(upstream_closed.wait(), timeout=2)
    await asyncio.sleep(0.1)  # let the abandoned body's own `finally` run too
    rows = await sync_to_async(request_logs)(2, timeout=0)
    assert len(rows) == 1
    assert (rows[0].status, rows[0].response) == ("cancelled", "Once upon ")
    assert rows[0].ttft_ms is not None


async def test_a_body_never_read_is_logged_once_and_closes_upstream(request_logs):
    from routing.streaming import sse_response

    relay, upstream_closed = await relay_for(["Once ", "upon ", "a ", "time"])
    response = sse_response(relay, {})
    await sync_to_async(response.close)()

    await asyncio.wait_for(upstream_closed.wait(), timeout=2)
    rows = await sync_to_async(request_logs)(1)
    assert len(rows) == 1
    assert (rows[0].status, rows[0].http_status) == ("cancelled", 499)
