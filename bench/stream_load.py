"""Start N streaming chat requests at once and measure time-to-first-token and completeness.

    python bench/stream_load.py --url http://127.0.0.1:8000/v1/chat/completions --token T -n 1000 \
        [--model openai] [--protocol openai|native] [--timeout 60]

``openai``: OpenAI SSE (``data: {...}`` chunks, complete when ``data: [DONE]`` arrives).
``native``: NeuroRoute's ``POST /prompt`` SSE (``event: delta`` ..., complete on ``event: done``).
All requests wait on one barrier and are released together; TTFT is measured from that common
start to the first non-empty content delta, so client-side connection setup counts (the same for
gateway and direct runs). Prints one ``BENCH_JSON {...}`` line. Loopback targets only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlparse

import aiohttp
import orjson


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


async def one(session: aiohttp.ClientSession, url: str, headers: dict, body: bytes, protocol: str,
              start: asyncio.Event, t0: list[float], timeout: float) -> dict:
    await start.wait()
    res: dict = {"ok": False, "ttft": None, "total": None, "chunks": 0, "error": None}
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    res["error"] = f"http {resp.status}"
                    await resp.read()
                    return res
                event = None
                async for raw in resp.content:
                    line = raw.strip()
                    if not line:
                        continue
                    if protocol == "openai":
                        if not line.startswith(b"data:"):
                            continue
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            res["ok"] = True
                            break
                        obj = orjson.loads(data)
                        if "error" in obj:
                            res["error"] = "stream error event"
                            break
                        choices = obj.get("choices") or []
                        if choices and (choices[0].get("delta") or {}).get("content"):
                            res["chunks"] += 1
                            if res["ttft"] is None:
                                res["ttft"] = time.perf_counter() - t0[0]
                    else:
                        if line.startswith(b"event:"):
                            event = line[6:].strip()
                            if event == b"done":
                                res["ok"] = True
                            elif event == b"error":
                                res["error"] = "stream error event"
                        elif line.startswith(b"data:") and event == b"delta":
                            res["chunks"] += 1
                            if res["ttft"] is None:
                                res["ttft"] = time.perf_counter() - t0[0]
                if not res["ok"] and res["error"] is None:
                    res["error"] = "stream ended without completion marker"
    except TimeoutError:
        res["error"] = "timeout"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        res["error"] = type(exc).__name__
    res["total"] = time.perf_counter() - t0[0]
    return res


async def run(args: argparse.Namespace) -> dict:
    host = urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("stream_load only targets loopback")
    if args.protocol == "openai":
        body = {"model": args.model, "stream": True,
                "messages": [{"role": "user", "content": args.prompt}]}
    else:
        body = {"prompt": args.prompt, "stream": True, "metadata": {"model": args.model, "cache": False}}
    payload = orjson.dumps(body)
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        start, t0 = asyncio.Event(), [0.0]
        tasks = [asyncio.create_task(one(session, args.url, headers, payload, args.protocol, start, t0, args.timeout))
                 for _ in range(args.n)]
        await asyncio.sleep(0.2)  # every task is parked on the barrier
        t0[0] = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0[0]
    ttfts = [r["ttft"] for r in results if r["ttft"] is not None]
    totals = [r["total"] for r in results if r["ok"]]
    errors: dict[str, int] = {}
    for r in results:
        if r["error"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    return {
        "n": args.n, "protocol": args.protocol, "completed": sum(r["ok"] for r in results),
        "errors": sum(1 for r in results if r["error"]), "error_kinds": errors,
        "ttft_p50_s": pct(ttfts, 50), "ttft_p99_s": pct(ttfts, 99), "ttft_max_s": max(ttfts, default=None),
        "total_p50_s": pct(totals, 50), "total_p99_s": pct(totals, 99), "wall_s": wall,
        "chunks_min": min((r["chunks"] for r in results if r["ok"]), default=0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="bench")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--model", default="openai")
    ap.add_argument("--protocol", choices=("openai", "native"), default="openai")
    ap.add_argument("--prompt", default="Stream a short answer about routing please")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request limit, seconds")
    args = ap.parse_args()
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        out = runner.run(run(args))
    print("BENCH_JSON " + json.dumps(out), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
