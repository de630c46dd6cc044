"""The gunicorn worker class for the gateway."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class GatewayWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "lifespan": "on",  # flush request logs and close pools on shutdown
        "http": "httptools",
        "loop": "uvloop",
        "access_log": False,
        "backlog": 4096,
    }
