"""gunicorn settings: `gunicorn -c neuroroute_site/gunicorn_conf.py neuroroute_site.asgi:application`.

Async uvicorn workers serve the gateway: one worker holds thousands of
concurrent upstream streams, so WEB_CONCURRENCY is about cores, not users.
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "neuroroute_site.workers.GatewayWorker"
# Streams may legitimately run for minutes; gunicorn's timeout only detects
# a worker that stopped heart-beating, not a slow request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# In-flight streams get this long to finish after SIGTERM.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
keepalive = 5
backlog = 4096
worker_connections = 10000
accesslog = None  # every request is already logged as JSON by the gateway
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def on_starting(server) -> None:
    """Fail in the master, before forking, when settings are unsafe or broken."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")
    django.setup()
    from django.core import checks

    errors = [m for m in checks.run_checks(include_deployment_checks=False) if m.is_serious()]
    if errors:
        raise SystemExit("Refusing to start:\n" + "\n".join(str(e) for e in errors))
