"""Adapters over one pooled HTTP transport per event loop.

Creating SDK clients is costly and every one would open its own connection
pool; a gateway wants one shared, keep-alive pool per process (per event
loop, since aiohttp sessions are bound to the loop that made them).
"""

from __future__ import annotations

import asyncio
import weakref

import httpx2
import openai

from providers.adapters import adapter_class
from providers.adapters.base import Adapter, ProviderSettings

# Generous limits: a gateway holds one upstream connection per in-flight stream.
POOL_LIMITS = httpx2.Limits(max_connections=4096, max_keepalive_connections=512, keepalive_expiry=30)

_transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = weakref.WeakKeyDictionary()
_adapters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ProviderSettings, Adapter]] = (
    weakref.WeakKeyDictionary()
)


def shared_transport() -> httpx2.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _transports.get(loop)
    if client is None or client.is_closed:
        # aiohttp measured faster than httpx's own transport under many
        # concurrent streams (see docs/benchmarks.md).
        client = openai.DefaultAioHttpClient(limits=POOL_LIMITS, timeout=openai.Timeout(120, connect=5))
        _transports[loop] = client
        _adapters[loop] = {}
    return client


def adapter_for(settings: ProviderSettings) -> Adapter:
    """The adapter for these provider settings; settings changes make a new one."""
    transport = shared_transport()
    cache = _adapters[asyncio.get_running_loop()]
    adapter = cache.get(settings)
    if adapter is None:
        if len(cache) > 64:  # stale settings from many admin edits
            cache.clear()
        adapter = adapter_class(settings.kind)(settings, transport)
        cache[settings] = adapter
    return adapter


async def close_transports() -> None:
    loop = asyncio.get_running_loop()
    client = _transports.pop(loop, None)
    _adapters.pop(loop, None)
    if client is not None:
        await client.aclose()
