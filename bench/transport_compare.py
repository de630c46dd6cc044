"""Which HTTP transport should the SDK clients use? aiohttp vs httpx's own.

Runs N concurrent streams (20 chunks each) through the OpenAI adapter
against the fake upstream (its own process), once per transport, in one
process on one event loop, and prints wall time and this process's CPU time.

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
        for name, make in 2 * (
            ("aiohttp (openai.DefaultAioHttpClient)", lambda: openai.DefaultAioHttpClient(limits=limits)),
            ("httpx (openai.DefaultAsyncHttpxClient)", lambda: openai.DefaultAsyncHttpxClient(limits=limits)),
        ):
            async def measure(make=make):
                async with make() as transport:
                    return await run(transport, url, args.n)

            wall, cpu = uvloop.run(measure())
            print(f"{name:40} {args.n} streams: wall {wall:.2f} s, client CPU {cpu:.2f} s ({cpu / args.n * 1000:.2f} ms/stream)")
    finally:
        upstream.terminate()


if __name__ == "__main__":
    main()
