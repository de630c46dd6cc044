"""Optional cache of complete answers, keyed on model, prompt and parameters.

Redis (REDIS_URL) is shared by every worker; without it each process keeps
a small in-memory LRU. A cache that errors or hangs is skipped: the short
socket timeout bounds the cost of a dead Redis to milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger("neuroroute.cache")
# What a sick or absent Redis raises; any of them is a miss, never a failed request.
CACHE_ERRORS = (RedisError, OSError, TimeoutError, orjson.JSONDecodeError)
LOCAL_MAX_ENTRIES = 2048


def cache_key(model_key: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    normalized = [
        {**m, "content": " ".join(m["content"].split()).lower()} if isinstance(m.get("content"), str) else m
        for m in messages
    ]
    blob = orjson.dumps([model_key, normalized, params], option=orjson.OPT_SORT_KEYS)
    return "nr:resp:" + hashlib.sha256(blob).hexdigest()


class LocalBackend:
    def __init__(self) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > LOCAL_MAX_ENTRIES:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


class RedisBackend:
    def __init__(self, url: str, timeout: float) -> None:
        import redis.asyncio as redis

        self._url, self._timeout = url, timeout
        self._clients: dict[int, Any] = {}
        self._redis = redis

    def _client(self):
        import asyncio

        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            client = self._redis.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),  # fail once, fast; the cache backs off instead
            )
            self._clients = {loop_id: client}  # one live loop per process in production
        return client

    async def get(self, key: str) -> bytes | None:
        return await self._client().get(key)

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self._client().set(key, value, ex=ttl)

    def clear(self) -> None:
        self._clients = {}


# After a failure, leave a sick Redis alone for a while: a hung server would
# otherwise cost a socket timeout on every request.
BACKOFF_SECONDS = 5.0


class ResponseCache:
    def __init__(self) -> None:
        self._backend: LocalBackend | RedisBackend | None = None
        self._down_until = 0.0

    def _available(self) -> bool:
        return self.ttl > 0 and time.monotonic() >= self._down_until

    def _failed(self, action: str, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            logger.warning(f"response cache {action} failed; skipping the cache for {BACKOFF_SECONDS:.0f} s", extra={"error": str(exc)[:200]})
        self._down_until = time.monotonic() + BACKOFF_SECONDS

    @property
    def backend(self) -> LocalBackend | RedisBackend:
        if self._backend is None:
            url = settings.REDIS_URL
            self._backend = RedisBackend(url, settings.REDIS_SOCKET_TIMEOUT) if url else LocalBackend()
        return self._backend

    @property
    def ttl(self) -> int:
        return settings.NEUROROUTE["RESPONSE_CACHE_TTL"]

    async def get(self, key: str) -> dict[str, Any] | None:
        if not self._available():
            return None
        try:
            raw = await self.backend.get(key)
            return orjson.loads(raw) if raw else None
        except CACHE_ERRORS as exc:
            self._failed("read", exc)
            return None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        if not self._available():
            return
        try:
            await self.backend.set(key, orjson.dumps(value), self.ttl)
        except CACHE_ERRORS as exc:
            self._failed("write", exc)

    def reset(self) -> None:
        self._backend = None
        self._down_until = 0.0


response_cache = ResponseCache()
