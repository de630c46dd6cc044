"""POST /prompt under upstream faults: retries, fallbacks, deadlines and the one log row.

Every request forces the `openai` model, so the chain is openai (gpt-4-turbo)
→ anthropic (claude-3-sonnet) → local (local-lmstudio). Faults are queued on
the fake upstream with a `model` filter, so they hit one upstream model only.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest

from providers.models import Provider
from routing.breaker import breaker
from routing.logwriter import request_log_writer
from routing.models import RequestLog

# Transactional: the gateway reads tokens and writes log rows from other
# threads, which cannot see a test's uncommitted transaction. Serialized
# rollback restores the registry the migrations seed.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
_prompts = itertools.count(1)


@pytest.fixture(autouse=True)
def clean_slate(fake_upstream):
    """No queued faults, no open circuits, before and after each test."""
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()
    RequestLog.objects.all().delete()
    yield
    httpx.delete(f"{fake_upstream.url}/_control/faults")
    breaker.reset()
    request_log_writer.flush()


@pytest.fixture
def inject(fake_upstream):
    def inject(*faults: dict[str, Any]) -> None:
        response = httpx.post(f"{fake_upstream.url}/_control/faults", json={"faults": list(faults)})
        response.raise_for_status()

    return inject


@pytest.fixture
def ask(client, user_token):
    """POST /prompt forcing `openai`, with a fresh prompt so the response cache never answers."""

    def ask(**metadata: Any):
        body = {"prompt": f"fault test {next(_prompts)} {time.time_ns()}", "metadata": {"model": "openai", **metadata}}
        return client.post("/prompt", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {user_token}")

    return ask


def only_log_row() -> RequestLog:
    request_log_writer.flush()
    rows = list(RequestLog.objects.filter(endpoint="prompt"))
    assert len(rows) == 1, [(r.status, r.error) for r in rows]
    return rows[0]


def attempt_summary(row: RequestLog) -> list[tuple[str, str]]:
    return [(a["model"], a.get("kind", "ok")) for a in row.attempts]


def assert_attempts_timed(row: RequestLog) -> None:
    for attempt in row.attempts:
        assert attempt["duration_ms"] >= 0
        assert attempt["ok"] is not bool(attempt.get("error"))


def test_prompt_retries_a_503_on_the_same_model(inject, ask):
    inject({"mode": "status", "status": 503, "count": 1, "model": "gpt-4-turbo"})

    response = ask()

    assert response.status_code == 200
    body = response.json()
    assert body["model_used"] == "openai"
    assert body["response"].startswith("[gpt-4-turbo]")
    assert "fallback" not in body["route"]
    row = only_log_row()
    assert row.status == "ok" and row.http_status == 200
    assert attempt_summary(row) == [("openai", "unavailable"), ("openai", "ok")]
    assert row.attempts[0]["status"] == 503
    assert "503" in row.attempts[0]["error"]
    assert_attempts_timed(row)


@pytest.mark.parametrize(
    ("hint", "wait_s"),
    [pytest.param({"retry_after": 1}, 1.0, id="Retry-After seconds"), pytest.param({"retry_after_ms": 600}, 0.6, id="retry-after-ms")],
)
def test_prompt_waits_for_retry_after_on_a_429(inject, ask, hint, wait_s):
    inject({"mode": "status", "status": 429, "count": 1, "model": "gpt-4-turbo", **hint})

    started = time.monotonic()
    response = ask()
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["model_used"] == "openai"
    assert elapsed >= wait_s
    row = only_log_row()
    assert attempt_summary(row) == [("openai", "rate_limit"), ("openai", "ok")]
    assert row.attempts[0]["status"] == 429


@pytest.mark.parametrize(
    ("mode", "kinds"),
    # openai's aiohttp transport reports a reset as ConnectTimeout, hence
    # "timeout": still retryable, which is what matters here.
    [("reset", {"connect", "timeout"}), ("truncate", {"connect"}), ("malformed", {"protocol"})],
)
def test_prompt_retries_broken_responses(inject, ask, mode, kinds):
    inject({"mode": mode, "count": 1, "model": "gpt-4-turbo"})

    response = ask()

    assert response.status_code == 200
    assert response.json()["model_used"] == "openai"
    row = only_log_row()
    assert row.status == "ok"
    assert [a["model"] for a in row.attempts] == ["openai", "openai"]
    assert row.attempts[0]["ok"] is False and row.attempts[0]["error"]
    assert row.attempts[0]["kind"] in kinds, row.attempts[0]
    assert row.attempts[1]["ok"] is True
    assert_attempts_timed(row)


def test_prompt_falls_back_when_openai_keeps_failing(inject, ask):
    inject({"mode": "status", "status": 503, "count": -1, "model": "gpt-4-turbo"})

    response = ask()

    assert response.status_code == 200
    body = response.json()
    assert body["model_used"] == "anthropic"
    assert body["response"].startswith("[claude-3-sonnet]")
    assert "openai failed" in body["route"]["fallback"]
    row = only_log_row()
    assert row.status == "ok" and row.model_key == "anthropic"
    assert attempt_summary(row) == [("openai", "unavailable")] * 3 + [("anthropic", "ok")]
    assert "fallback" in row.decision
    assert row.route_reason.startswith("answered by anthropic")


def test_prompt_answers_504_when_the_deadline_passes(inject, ask):
    inject({"mode": "delay", "ms": 3000, "count": 1, "model": "gpt-4-turbo"})

    started = time.monotonic()
    response = ask(deadline_s=0.5)
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "timeout" and "deadline" in error["message"]
    assert elapsed < 1.5
    row = only_log_row()
    assert row.status == "upstream_error" and row.http_status == 504
    assert attempt_summary(row) == [("openai", "timeout")]
    assert 400 <= row.attempts[0]["duration_ms"] < 1500


def test_prompt_does_not_retry_a_400_and_reports_it(inject, ask, fake_upstream):
    # execution.py: an upstream 400 is the request's own fault; it is neither
    # retried nor sent to the fallbacks, and the client gets a 400 saying why.
    inject({"mode": "status", "status": 400, "count": 1, "model": "gpt-4-turbo", "message": "bad stop sequence"})

    response = ask()

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request" and "bad stop sequence" in error["message"]
    row = only_log_row()
    assert row.status == "upstream_error" and row.http_status == 400
    assert attempt_summary(row) == [("openai", "bad_request")]


def test_prompt_marks_a_rejected_key_and_health_shows_it(inject, ask, client):
    inject({"mode": "status", "status": 401, "count": 1, "model": "gpt-4-turbo"})

    response = ask()

    assert response.status_code == 200
    assert response.json()["model_used"] == "anthropic"
    row = only_log_row()
    assert attempt_summary(row) == [("openai", "auth"), ("anthropic", "ok")]
    openai = Provider.objects.get(name="openai")
    assert openai.key_failing_since is not None
    health = client.get("/health").json()
    assert health["checks"]["provider_keys"]["providers"]["openai"]["ok"] is False
    assert "key_failing_since" in health["checks"]["provider_keys"]["providers"]["openai"]
    assert health["status"] == "degraded"


def test_rejected_key_is_cleared_by_the_next_success(inject, ask, client):
    inject({"mode": "status", "status": 401, "count": 1, "model": "gpt-4-turbo"})
    ask()
    assert Provider.objects.get(name="openai").key_failing_since is not None

    assert ask().json()["model_used"] == "openai"  # the key works again

    openai = Provider.objects.get(name="openai")
    assert (openai.key_failing_since, openai.key_error) == (None, "")
    assert client.get("/health").json()["checks"]["provider_keys"]["providers"]["openai"]["ok"] is True


def test_a_stored_key_records_when_it_was_last_used(ask):
    from keys.models import ProviderAPIKey
    from keys.services import api_key_set

    api_key_set(provider=Provider.objects.get(name="openai"), key="sk-stored-key-0123456789")
    assert ProviderAPIKey.objects.get(is_active=True).last_used_at is None

    assert ask().json()["model_used"] == "openai"

    assert ProviderAPIKey.objects.get(is_active=True).last_used_at is not None


def test_storing_a_new_key_clears_the_failure(db):
    from keys.services import api_key_set

    openai = Provider.objects.get(name="openai")
    Provider.objects.filter(pk=openai.pk).mark_key_failing("upstream returned 401")
    api_key_set(provider=openai, key="sk-fresh-key-0123456789")

    assert Provider.objects.get(pk=openai.pk).key_failing_since is None


def test_prompt_answers_json_error_naming_the_failure_when_every_model_fails(inject, ask):
    inject({"mode": "status", "status": 500, "count": -1, "message": "all upstreams on fire"})

    response = ask()

    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert "500" in error["message"] and "all upstreams on fire" in error["message"]
    assert error["code"] == "server"
    row = only_log_row()
    assert row.status == "upstream_error" and row.http_status == 502
    assert [a["model"] for a in row.attempts] == ["openai"] * 3 + ["anthropic"] * 3 + ["local"] * 3
    assert all(a["status"] == 500 for a in row.attempts)
    assert "all upstreams on fire" in row.error


def test_prompt_answers_503_when_every_model_is_overloaded(inject, ask):
    inject({"mode": "status", "status": 503, "count": -1})

    response = ask()

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    row = only_log_row()
    assert row.http_status == 503
    assert {a["model"] for a in row.attempts} == {"openai", "anthropic", "local"}
