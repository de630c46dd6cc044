"""ASGI entry point: the gateway's async views, served by uvicorn workers.

Django does not speak the ASGI lifespan protocol, so a thin wrapper
handles it: on shutdown, after in-flight requests have finished, queued
request-log rows are flushed and upstream connection pools closed.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")

django_application = get_asgi_application()


def _with_static(app):
    from django.conf import settings

    if not settings.NEUROROUTE["SERVE_STATIC"]:
        return app
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    # Admin and history-page assets; small enough to serve in-process.
    return ASGIStaticFilesHandler(app)


http_application = _with_static(django_application)


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await http_application(scope, receive, send)


async def _warm_up() -> None:
    """Load what the first request would otherwise wait for."""
    import anthropic  # noqa: F401  (SDK import costs ~0.5 s)
    from asgiref.sync import sync_to_async

    from routing.gateway_config import config_store
    from routing.tokens import count_tokens

    await config_store.get()
    await sync_to_async(count_tokens, thread_sensitive=False)("warm up the tokenizer")


async def _lifespan(receive, send) -> None:
    from asgiref.sync import sync_to_async

    from providers.clients import close_transports
    from routing.logwriter import request_log_writer

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await _warm_up()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_transports()
            await sync_to_async(request_log_writer.flush_at_exit, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return
