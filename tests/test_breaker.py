"""The circuit breaker: trips, cool-down, half-open probe, sharing through Redis, and a dead Redis."""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid

import httpx
import pytest

from routing.breaker import CircuitBreaker, breaker
from routing.logwriter import request_log_writer
from routing.models import RequestLog

REDIS_URL = os.environ.get("REDIS_URL")
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set")
_prompts = itertools.count(1)


def local_breaker(threshold: int = 3, cool_down: float = 0.3) -> CircuitBreaker:
    return CircuitBreaker(threshold, cool_down, use_settings_redis=False)


def test_breaker_opens_after_threshold_consecutive_failures():
    circuit = local_breaker(threshold=3, cool_down=30)

    circuit.failure("openai")
    circuit.failure("openai")
    assert circuit.allow("openai")
    circuit.failure("openai")

    assert not circuit.allow("openai")
    status = circuit.status()["openai"]
    assert status["state"] == "open" and status["consecutive_failures"] == 3
    assert 29 < status["retry_in_s"] <= 30


def test_breaker_counts_only_consecutive_failures():
    circuit = local_breaker(threshold=3)

    circuit.failure("openai")
    circuit.failure("openai")
    circuit.success("openai")
    circuit.failure("openai")
    circuit.failure("openai")

    assert circuit.allow("openai")
    assert circuit.status()["openai"]["state"] == "closed"


def test_half_open_lets_one_probe_through_and_its_success_closes():
    circuit = local_breaker(threshold=1, cool_down=0.1)
    circuit.failure("openai")
    assert not circuit.allow("openai")

    time.sleep(0.15)

    assert circuit.status()["openai"]["state"] == "half_open"
    assert circuit.allow("openai")  # the probe
    assert not circuit.allow("openai")  # nobody else while it is out
    circuit.success("openai")
    assert circuit.allow("openai") and circuit.allow("openai")
    assert circuit.status()["openai"]["state"] == "closed"


def test_failed_probe_reopens_for_another_cool_down():
    circuit = local_breaker(threshold=1, cool_down=0.1)
    circuit.failure("openai")
    time.sleep(0.15)
    assert circuit.allow("openai")

    circuit.failure("openai")

    assert not circuit.allow("openai")
    assert circuit.status()["openai"]["state"] == "open"


def test_a_probe_that_never_reports_does_not_block_forever():
    # A probe ending in a non-retryable error reports neither success nor
    # failure; its lease runs out after a cool-down.
    circuit = local_breaker(threshold=1, cool_down=0.1)
    circuit.failure("openai")
    time.sleep(0.15)
    assert circuit.allow("openai")
    assert not circuit.allow("openai")

    time.sleep(0.15)

    assert circuit.allow("openai")


def test_success_from_a_request_older_than_the_trip_does_not_close():
    circuit = local_breaker(threshold=1, cool_down=30)
    circuit.failure("openai")

    circuit.success("openai")

    assert not circuit.allow("openai")


# -- through POST /prompt -----------------------------------------------------


@pytest.fixture
def small_breaker(settings, fake_upstream):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "BREAKER_THRESHOLD": 3, "BREAKER_COOLDOWN": 0.6}
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()
    RequestLog.objects.all().delete()
    yield breaker
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()


def ask_openai(client, token):
    body = {"prompt": f"breaker test {next(_prompts)} {uuid.uuid4()}", "metadata": {"model": "openai", "cache": False}}
    return client.post("/prompt", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def last_log_row() -> RequestLog:
    request_log_writer.flush()
    return RequestLog.objects.filter(endpoint="prompt").order_by("-created_at", "-id").first()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prompt_skips_an_open_circuit_then_a_probe_closes_it(small_breaker, client, user_token, fake_upstream):
    httpx.post(
        f"{fake_upstream.url}/_control/faults",
        json={"faults": [{"mode": "status", "status": 503, "count": -1, "model": "gpt-4-turbo"}]},
    ).raise_for_status()

    first = ask_openai(client, user_token)  # three 503s trip the circuit, anthropic answers
    assert first.status_code == 200 and first.json()["model_used"] == "anthropic"
    assert small_breaker.status()["openai"]["state"] == "open"
    health = client.get("/health").json()
    assert health["circuits"]["openai"]["state"] == "open"

    second = ask_openai(client, user_token)
    assert second.status_code == 200
    assert second.json()["model_used"] == "anthropic"
    assert "openai failed: circuit open" in second.json()["route"]["fallback"]
    row = last_log_row()
    assert [(a["model"], a.get("kind", "ok")) for a in row.attempts] == [("openai", "circuit_open"), ("anthropic", "ok")]
    assert row.attempts[0]["duration_ms"] == 0

    httpx.delete(f"{fake_upstream.url}/_control/faults")
    time.sleep(0.7)  # past the cool-down: half-open

    third = ask_openai(client, user_token)
    assert third.status_code == 200 and third.json()["model_used"] == "openai"
    assert small_breaker.status()["openai"]["state"] == "closed"
    assert client.get("/health").json()["circuits"]["openai"]["state"] == "closed"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prompt_answers_503_json_when_every_circuit_is_open(small_breaker, client, user_token):
    for provider in ("openai", "anthropic", "lmstudio"):
        for _ in range(3):
            small_breaker.failure(provider)

    response = ask_openai(client, user_token)

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "circuit_open" and "circuits open" in error["message"]
    row = last_log_row()
    assert row.http_status == 503
    assert [a["kind"] for a in row.attempts] == ["circuit_open"] * 3


# -- shared through Redis ----------------------------------------------------


@pytest.fixture
def provider_name():
    return f"test-provider-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def two_workers():
    workers = [CircuitBreaker(3, 5.0, redis_url=REDIS_URL) for _ in range(2)]
    yield workers
    workers[0].reset()


@needs_redis
def test_workers_share_an_open_circuit_through_redis(two_workers, provider_name):
    one, two = two_workers
    assert two.allow(provider_name)

    for _ in range(3):
        one.failure(provider_name)

    time.sleep(0.55)  # past the other worker's local copy of the shared state
    assert not two.allow(provider_name)
    status = two.status()[provider_name]
    assert status["state"] == "open" and status["shared"] is True
    assert status["consecutive_failures"] == 3


@needs_redis
def test_workers_add_up_failures_through_redis(two_workers, provider_name):
    one, two = two_workers

    one.failure(provider_name)
    two.failure(provider_name)
    one.failure(provider_name)

    assert not one.allow(provider_name)  # its failure tripped it: it knows at once
    time.sleep(0.55)  # the other worker learns at its next refresh
    assert not two.allow(provider_name)


@needs_redis
def test_only_one_worker_probes_a_half_open_circuit(provider_name):
    one, two = (CircuitBreaker(1, 0.2, redis_url=REDIS_URL) for _ in range(2))
    try:
        one.failure(provider_name)
        time.sleep(0.6)

        probes = [one.allow(provider_name), two.allow(provider_name)]
        assert probes.count(True) == 1
        prober, other = (one, two) if probes[0] else (two, one)
        prober.success(provider_name)
        time.sleep(0.55)
        assert other.allow(provider_name)
        assert other.status()[provider_name]["state"] == "closed"
    finally:
        one.reset()


# -- a dead Redis ------------------------------------------------------------


def test_dead_redis_fails_open_fast_and_local_state_still_works(provider_name, caplog):
    circuit = CircuitBreaker(2, 30.0, redis_url=DEAD_REDIS)

    with caplog.at_level(logging.WARNING, logger="neuroroute.breaker"):
        started = time.perf_counter()
        assert circuit.allow(provider_name)
        assert time.perf_counter() - started < 0.05
        for _ in range(200):
            circuit.allow(provider_name)
        circuit.failure(provider_name)
        circuit.failure(provider_name)
        assert not circuit.allow(provider_name)
        assert time.perf_counter() - started < 0.1

    assert circuit.status()[provider_name]["state"] == "open"
    assert circuit.status()[provider_name]["shared"] is False
    warnings = [r for r in caplog.records if r.name == "neuroroute.breaker"]
    assert len(warnings) == 1  # logged once, not per call


def test_allow_is_cheap_on_the_hot_path(provider_name):
    circuit = CircuitBreaker(5, 30.0, redis_url=REDIS_URL or None, use_settings_redis=False)
    circuit.allow(provider_name)

    started = time.perf_counter()
    for _ in range(10_000):
        circuit.allow(provider_name)
        circuit.success(provider_name)
    elapsed = time.perf_counter() - started

    # 10k allow+success pairs, at most a handful of refreshes: well under 1 s.
    assert elapsed < 1.0
    circuit.reset()
