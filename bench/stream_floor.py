"""What the 1,000-stream time-to-first-token ratio can be on this machine, whatever the gateway.

Serves three zero-feature streaming proxies in front of the fake upstream - no
auth, routing, parsing or logging; upstream bytes are passed through as they
arrive - and runs the same load as `run_all.py` figure 3 against each, next to
the same load sent straight to the fake upstream:

* ``aiohttp``: a plain aiohttp session,
* ``sdk-transport``: the OpenAI SDK's pooled aiohttp client (``DefaultAioHttpClient``),
  requests sent with its own ``send()``,
* ``sdk``: the same client driven by the SDK (``AsyncOpenAI.post``), as NeuroRoute does.

Each proxy runs under uvicorn with two workers (uvloop, httptools), like the gateway.

    python bench/stream_floor.py [-n 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

VARIANTS = ("aiohttp", "sdk-transport", "sdk")


# --------------------------------------------------------------------------- the proxies (ASGI)

_state: dict = {}


async def _read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _open(variant: str, upstream: str, body: bytes):
    """An async iterator of upstream bytes and a closer, for one request."""
    import orjson

    payload = orjson.loads(body)
    payload["model"] = "gpt-4-turbo"
    data = orjson.dumps(payload)
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json", "Accept": "text/event-stream"}
    if variant == "aiohttp":
        import aiohttp

        session = _state.get("session")
        if session is None:
            session = _state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4096))
        response = await session.post(upstream + "/v1/chat/completions", data=data, headers=headers)
        return response.content.iter_any(), response.release
    import httpx2
    import openai

    client = _state.get("client")
    if client is None:
        transport = openai.DefaultAioHttpClient(limits=httpx2.Limits(max_connections=4096, max_keepalive_connections=512))
        client = _state["client"] = openai.AsyncOpenAI(
            api_key="bench", base_url=upstream + "/v1", http_client=transport, max_retries=0
        )
    if variant == "sdk":
        response = await client.post(
            "/chat/completions", cast_to=httpx2.Response, content=data,
            options={"headers": {"Accept": "text/event-stream"}}, stream=True,
        )
    else:
        transport = client._client  # the http client handed to AsyncOpenAI above
        request = transport.build_request("POST", upstream + "/v1/chat/completions", content=data, headers=headers)
        response = await transport.send(request, stream=True)
    return response.aiter_raw(), response.aclose


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = await _read_body(receive)
    chunks, close = await _open(os.environ["FLOOR_VARIANT"], os.environ["FLOOR_UPSTREAM"], body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        result = close()
        if result is not None:
            await result
    await send({"type": "http.response.body", "body": b""})


# --------------------------------------------------------------------------- the runner


def main() -> None:
    import run_all as bench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    upstream_proc, upstream = bench.start_upstream(50)
    try:
        for variant in VARIANTS:
            port = bench.free_port()
            env = dict(os.environ, FLOOR_VARIANT=variant, FLOOR_UPSTREAM=upstream, PYTHONPATH=str(BENCH))
            cmd = [bench.PY, "-m", "uvicorn", "stream_floor:app", "--workers", "2", "--loop", "uvloop",
                   "--http", "httptools", "--no-access-log", "--backlog", "4096", "--port", str(port)]
            proxy = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(3)
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                bench.stream_load(url, "bench", 100, "openai", "openai")  # warm both workers
                for _ in range(args.rounds):
                    direct = bench.stream_load(upstream + "/v1/chat/completions", "bench", args.n, "openai", "gpt-4-turbo")
                    time.sleep(1)
                    via = bench.stream_load(url, "bench", args.n, "openai", "openai")
                    ratio = via["ttft_p50_s"] / direct["ttft_p50_s"]
                    print(f"{variant:14} TTFT p50 direct {direct['ttft_p50_s']:.3f} s, via proxy {via['ttft_p50_s']:.3f} s:"
                          f" {ratio:.2f}x  (errors {via['errors']}, complete {via['completed']}/{args.n})", flush=True)
                    time.sleep(1)
            finally:
                proxy.terminate()
                proxy.wait(15)
    finally:
        bench.stop(upstream_proc)


if __name__ == "__main__":
    main()
