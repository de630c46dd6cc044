"""Many concurrent requests against the real ASGI server while an upstream fails half the time."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from routing.breaker import breaker
from routing.logwriter import request_log_writer
from routing.models import RequestLog
from tests.live_server import LiveServer

REQUESTS = 200
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]


@pytest.fixture
def live_gateway(transactional_db, fake_upstream):
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()
    RequestLog.objects.all().delete()
    server = LiveServer()
    server.start()
    yield server.url
    server.stop()
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()


async def send_all(url: str, token: str, run: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            body = {"prompt": f"concurrency {run} request {i}", "metadata": {"model": "openai", "cache": False}}
            return await client.post("/prompt", json=body, headers={"Authorization": f"Bearer {token}"})

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def test_every_concurrent_request_is_answered_and_logged_once(live_gateway, user_token, fake_upstream):
    httpx.post(
        f"{fake_upstream.url}/_control/faults",
        json={"faults": [{"mode": "status", "status": 503, "count": -1, "probability": 0.5, "model": "gpt-4-turbo"}]},
    ).raise_for_status()
    run = uuid.uuid4().hex[:8]

    responses = asyncio.run(send_all(live_gateway, user_token, run))

    statuses = {}
    for response in responses:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        if response.status_code == 200:
            assert body["model_used"] in {"openai", "anthropic"}
            assert body["response"]
        else:
            assert response.status_code >= 500 and body["error"]["message"], body
    assert statuses.get(200, 0) >= REQUESTS * 0.9, statuses  # a fallback is always there
    fallbacks = sum(1 for r in responses if r.status_code == 200 and r.json()["model_used"] == "anthropic")
    assert fallbacks > 0

    request_log_writer.flush()
    rows = RequestLog.objects.filter(endpoint="prompt", prompt__contains=f"concurrency {run}")
    assert rows.count() == REQUESTS
    assert rows.filter(status="ok").count() == statuses.get(200, 0)
