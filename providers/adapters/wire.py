"""Raw calls through an SDK client: its auth, base URL, timeouts and error
types, without its per-request model building.

The SDKs' typed `create()` spends most of a gateway's CPU turning dicts into
TypedDict-checked parameters and every streamed chunk into a pydantic
object. A gateway only forwards JSON, so it sends the body as bytes through
the client's own `post()` and parses answers with orjson.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


async def post(client: Any, path: str, payload: dict[str, Any], *, stream: bool) -> httpx2.Response:
    """POST through the SDK client; non-2xx answers raise the SDK's status errors."""
    return await client.post(
        path,
        cast_to=httpx2.Response,
        content=orjson.dumps(payload),
        options={"headers": SSE_HEADERS if stream else JSON_HEADERS},
        stream=stream,
    )


class MalformedResponse(ValueError):
    """The upstream answered 2xx with something that is not the protocol."""


def json_body(response: httpx2.Response) -> dict[str, Any]:
    data = orjson.loads(response.content)
    if not isinstance(data, dict):
        raise MalformedResponse("upstream answered with a non-object JSON body")
    return data


async def sse_events(response: httpx2.Response) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield (event name, data) for each server-sent event; the name may be empty."""
    buffer = b""
    event = b""
    data: list[bytes] = []
    async for chunk in response.aiter_raw():
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line = buffer[:end].rstrip(b"\r")
            buffer = buffer[end + 1 :]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = b"", []
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                event = line[6:].strip()
    if data:
        yield event, b"\n".join(data)
