"""Which HTTP transport should the SDK clients use? aiohttp vs httpx's own.

Runs N concurrent streams (20 chunks each) through the OpenAI adapter
against the fake upstream (its own process), once per transport, in one
process on one event loop, and prints wall time and this process's CPU time.

A third row sends the same requests through the same aiohttp-backed client's
own `send()`, skipping the SDK's request pipeline (options, headers, auth,
response wrapping): the difference is what that pipeline costs per request.

    python bench/transport_compare.py [-n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run(transport, url: str, n: int) -> tuple[float, float]:
    from providers.adapters.base import ChatRequest, ProviderSettings
    from providers.adapters.openai import OpenAIAdapter

    settings = ProviderSettings("openai", "openai", url + "/v1", "bench", 5.0, 60.0)
    adapter = OpenAIAdapter(settings, transport)
    request = ChatRequest(model="gpt-4-turbo", messages=[{"role": "user", "content": "stream please"}])

    async def one() -> int:
        count = 0
        async for _ in adapter.stream(request):
            count += 1
        return count

    return await _timed(one, n)


async def run_without_sdk(transport, url: str, n: int) -> tuple[float, float]:
    """The same streams through the transport's own send(), no SDK request pipeline."""
    import orjson

    body = orjson.dumps(
        {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "stream please"}], "stream": True}
    )
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json", "Accept": "text/event-stream"}

    async def one() -> int:
        request = transport.build_request("POST", url + "/v1/chat/completions", content=body, headers=headers)
        response = await transport.send(request, stream=True)
        count = 0
        try:
            async for line in response.aiter_lines():
                if line.startswith("data:") and line != "data: [DONE]":
                    orjson.loads(line[5:])
                    count += 1
        finally:
            await response.aclose()
        return count

    return await _timed(one, n)


async def _timed(one, n: int) -> tuple[float, float]:
    await asyncio.gather(*(one() for _ in range(20)))  # warm the pool
    cpu, wall = time.process_time(), time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(n)))
    assert all(counts), "every stream yields deltas"
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    import django

    django.setup()
    import httpx2
    import openai
    import uvloop

    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "providers.fake_upstream", "--port", str(port), "--chunks", "20"], cwd=ROOT
    )
    try:
        time.sleep(1.5)
        url = f"http://127.0.0.1:{port}"
        limits = httpx2.Limits(max_connections=4096, max_keepalive_connections=512)
        aiohttp_client = lambda: openai.DefaultAioHttpClient(limits=limits)
        httpx_client = lambda: openai.DefaultAsyncHttpxClient(limits=limits)
        for name, make, how in 2 * (
            ("aiohttp (openai.DefaultAioHttpClient)", aiohttp_client, run),
            ("httpx (openai.DefaultAsyncHttpxClient)", httpx_client, run),
            ("aiohttp client's send(), no SDK pipeline", aiohttp_client, run_without_sdk),
        ):
            async def measure(make=make, how=how):
                async with make() as transport:
                    return await how(transport, url, args.n)

            wall, cpu = uvloop.run(measure())
            print(f"{name:40} {args.n} streams: wall {wall:.2f} s, client CPU {cpu:.2f} s ({cpu / args.n * 1000:.2f} ms/stream)")
    finally:
        upstream.terminate()


if __name__ == "__main__":
    main()
