"""ASGI entry point: the gateway's async views, served by uvicorn workers.

Django does not speak the ASGI lifespan protocol, so a thin wrapper
handles it: on shutdown, after in-flight requests have finished, queued
request-log rows are flushed and upstream connection pools closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os

from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")

django_application = get_asgi_application()

# The gateway's own endpoints: token-authenticated JSON, no sessions, CSRF,
# messages or redirects. Django's stock middleware runs process_request and
# process_response through a thread hop each even under ASGI, which costs
# more than the rest of the request, so these paths skip it.
GATEWAY_PREFIXES = ("/prompt", "/route", "/v1/")


class GatewayHandler(ASGIHandler):
    """Django's ASGI handler for the gateway views, minus per-request thread hops.

    The stock handler sends request_started/request_finished through
    sync_to_async inside a per-request ThreadSensitiveContext, which starts
    and joins a thread for every request, and wraps the view in middleware
    that does the same. Gateway views use the database only from worker
    threads of their own, so neither is needed here.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(
            self._get_response_async if is_async else self._get_response
        )

    async def __call__(self, scope, receive, send) -> None:
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            return

        async def process_request() -> None:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # client gone mid-send
                await self.send_response(response, send)

        # As in Django: a disconnect cancels the view, so streams stop their
        # upstream call and log what they had.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.cancelled():
                with contextlib.suppress(RequestAborted):
                    task.result()
        body_file.close()


gateway_application = GatewayHandler()


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
    if scope["type"] == "http" and scope["path"].startswith(GATEWAY_PREFIXES):
        await gateway_application(scope, receive, send)
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
    # Everything loaded so far lives as long as the worker: keep it out of
    # the garbage collector's full passes, which otherwise stall the event
    # loop for tens of milliseconds (the p99 of every request).
    gc.collect()
    gc.freeze()


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
