"""Redis dies mid-run: every request still answers, and none waits long for the corpse."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis

from routing.breaker import breaker
from routing.logwriter import request_log_writer
from routing.response_cache import response_cache

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.slow,
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def throwaway_redis():
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.2)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    client.close()
    yield process, url
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)


@pytest.fixture
def gateway_on(throwaway_redis, settings):
    """Point the cache, the response cache and the breaker at the throwaway Redis."""
    process, url = throwaway_redis
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25, "IGNORE_EXCEPTIONS": True},
        }
    }
    response_cache.reset()
    breaker.reset()
    yield process
    request_log_writer.flush()  # before the test database is emptied
    response_cache.reset()
    breaker.reset()


def ask(client, token, prompt: str):
    started = time.monotonic()
    response = client.post(
        "/prompt",
        {"prompt": prompt, "metadata": {"model": "openai"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return response, time.monotonic() - started


def test_requests_keep_answering_quickly_after_redis_dies(gateway_on, client, user_token):
    run = uuid.uuid4().hex[:8]
    repeated = f"outage {run} repeated prompt"
    before = [ask(client, user_token, f"outage {run} before {i}") for i in range(5)]
    before += [ask(client, user_token, repeated), ask(client, user_token, repeated)]
    assert before[-1][0].json()["cached"] is True  # Redis is really in the path
    breaker.failure("openai")  # something for the breaker to share

    gateway_on.kill()
    gateway_on.wait(timeout=5)

    after = [ask(client, user_token, f"outage {run} after {i}") for i in range(10)]
    after.append(ask(client, user_token, repeated))  # a cache miss now, not an error

    for response, elapsed in before + after:
        assert response.status_code == 200, response.content
        assert response.json()["response"]
        assert elapsed < 1.0, f"a request took {elapsed:.2f}s with Redis down"
    assert after[-1][0].json()["cached"] is False
