"""Shared fixtures: named clients and tokens, and the fake upstream at the network edge."""

from __future__ import annotations

import os

os.environ.setdefault("NEUROROUTE_ENV", "test")
os.environ.setdefault("NEUROROUTE_LOG_TO_FILE", "0")

import pytest


@pytest.fixture(scope="session")
def fake_upstream():
    """One fake OpenAI/Anthropic server for the whole run, on a free port."""
    from providers.fake_upstream import FakeUpstream

    server = FakeUpstream()
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _point_providers_at_fake(fake_upstream, settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "FAKE_UPSTREAM_URL": fake_upstream.url}
    yield


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    """Each test starts from the database's configuration, not a previous test's."""
    from routing import execution
    from routing.breaker import breaker
    from routing.gateway_config import config_store
    from routing.latency import latency_stats
    from routing.response_cache import response_cache

    config_store.invalidate()
    latency_stats.clear()
    breaker.reset()
    response_cache.reset()
    execution._key_used_at.clear()
    yield
    config_store.invalidate()


@pytest.fixture
def user_token(db):
    from keys.models import ClientToken

    _token, raw = ClientToken.issue(name="alice-app")
    return raw


@pytest.fixture
def admin_token(db):
    from keys.models import ClientToken

    _token, raw = ClientToken.issue(name="ops", is_admin=True)
    return raw


@pytest.fixture
def api(user_token):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    return client


@pytest.fixture
def admin_api(admin_token):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return client


@pytest.fixture
def staff_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_user("operator", "ops@example.com", "correct horse battery", is_staff=True, is_superuser=True)



# --- The gateway served live (uvicorn in a thread), for tests with real SDK clients.


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker, fake_upstream):
    """neuroroute_site.asgi:application on a free port for the whole run."""
    from tests.live_server import LiveServer

    server = LiveServer()
    with django_db_blocker.unblock():  # lifespan startup warms the config from the database
        server.start()
    yield server
    with django_db_blocker.unblock():  # lifespan shutdown flushes queued log rows
        server.stop()
    # Let PostgreSQL drop the test database: close the pool the server's
    # threads returned connections to, and collect the connections its
    # executor threads still held when they exited.
    import gc

    from django.db import connections

    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()
    gc.collect()


@pytest.fixture
def live_server_url(asgi_server, fake_upstream, transactional_db, django_db_serialized_rollback):
    """Base URL of the live gateway, for a test starting from a clean slate.

    The server thread reads rows only once they are committed, so tests using
    it are transactional; serialized rollback restores the seeded registry
    that the previous transactional test's flush removed. Mark such tests
    `@pytest.mark.django_db(transaction=True, serialized_rollback=True)`.
    In-process state (config, breaker, cache) is reset by _fresh_gateway_state.
    """
    import httpx

    from providers.models import ModelEntry
    from routing.logwriter import request_log_writer
    from routing.models import RequestLog

    if not ModelEntry.objects.exists():
        pytest.fail("The model registry is empty: mark the test django_db(transaction=True, serialized_rollback=True)")
    request_log_writer.flush()
    RequestLog.objects.all().delete()
    _forget_cached_answers()
    httpx.delete(f"{fake_upstream.url}/_control/faults").raise_for_status()
    httpx.post(f"{fake_upstream.url}/_control/reset").raise_for_status()
    yield asgi_server.url
    httpx.delete(f"{fake_upstream.url}/_control/faults").raise_for_status()
    request_log_writer.flush()  # before the database is flushed, not after


def _forget_cached_answers() -> None:
    """Answers cached in Redis outlive a test, and a run: drop them."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return  # the in-memory cache went with response_cache.reset()
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
    try:
        keys = list(client.scan_iter("nr:resp:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def request_logs():
    """`request_logs(n)`: the RequestLog rows once n exist (rows are written in batches, off-thread).

    Async tests call it through sync_to_async.
    """
    import threading
    import time

    from django.db import connection

    from routing.logwriter import request_log_writer
    from routing.models import RequestLog

    def wait_for(count: int = 1, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        try:
            while True:
                request_log_writer.flush()
                rows = list(RequestLog.objects.order_by("created_at", "id"))
                if len(rows) >= count or time.monotonic() > deadline:
                    return rows
                time.sleep(0.05)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()  # an async test's worker thread: leave no connection behind

    return wait_for


@pytest.fixture
def upstream_faults(fake_upstream):
    """`upstream_faults({"mode": "status", "status": 400}, ...)` queues faults on the fake upstream."""
    import httpx

    def add(*faults: dict) -> None:
        httpx.post(f"{fake_upstream.url}/_control/faults", json={"faults": list(faults)}).raise_for_status()

    return add


def pytest_sessionfinish(session, exitstatus):
    """Collect the connection pools of the short-lived loops the Django test client made.

    Each sync test-client call to an async view runs on a fresh event loop, and
    its pooled upstream connections die with it; collecting them here, quietly,
    keeps interpreter shutdown from logging about them to closed streams.
    """
    import gc
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    logging.raiseExceptions = False
    gc.collect()
