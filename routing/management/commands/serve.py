"""`make run`: prepare a working gateway on this machine and serve it with gunicorn.

Migrates, trains the default classifier if none is active, makes sure an
admin user and a client token exist, starts the bundled fake upstream when
no real backend is reachable, then runs gunicorn with uvicorn workers.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from keys.models import ClientToken, hash_token
from keys.resolution import resolve_api_key
from providers.models import Provider

BANNER = "=" * 72


def _listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 80), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = "Prepare and serve the gateway (gunicorn + uvicorn workers)."

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.ensure_classifier()
        self.ensure_admin()
        token = self.ensure_token()
        env = os.environ.copy()
        fake = self.maybe_start_fake_upstream(env)
        host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
        self.stdout.write(
            f"\n{BANNER}\nNeuroRoute on http://{host}:{port}\n"
            f"  admin:      http://{host}:{port}/admin/   (history: /history/, API docs: /api/docs/)\n"
            f"  client token: {token}\n"
            f"  try it:     curl -s http://{host}:{port}/prompt -H 'Authorization: Bearer {token}' "
            f"-H 'Content-Type: application/json' -d '{{\"prompt\": \"Compare quicksort and merge sort for large datasets\"}}'\n{BANNER}\n"
        )
        self.stdout.flush()
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "neuroroute_site/gunicorn_conf.py", "neuroroute_site.asgi:application"]
        server = subprocess.Popen(gunicorn, env=env, cwd=settings.BASE_DIR)
        try:
            signal.signal(signal.SIGTERM, lambda *_: server.terminate())
            server.wait()
        except KeyboardInterrupt:
            server.send_signal(signal.SIGINT)
            server.wait()
        finally:
            if fake is not None:
                fake.terminate()

    def ensure_classifier(self) -> None:
        from routing.models import ClassifierVersion

        if not ClassifierVersion.objects.filter(is_active=True).exists():
            self.stdout.write("Training the default intent classifier (first run only)…")
            call_command("train_classifier", no_cv=True, verbosity=0)

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin user exists: log in at /admin/ with your credentials.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        self.stdout.write(self.style.SUCCESS(f"Created admin user 'admin' with password: {password}  (change it in the admin)"))

    def ensure_token(self) -> str:
        """Reuse this checkout's development token, so restarts don't mint new ones."""
        path = Path(settings.DATA_DIR) / "dev-client-token"
        if path.exists():
            raw = path.read_text().strip()
            if ClientToken.objects.active().filter(token_hash=hash_token(raw)).exists():
                return raw
        _, raw = ClientToken.issue(name="make run (local development)", is_admin=True)
        path.write_text(raw)
        path.chmod(0o600)
        return raw

    def maybe_start_fake_upstream(self, env: dict[str, str]) -> subprocess.Popen | None:
        forced = env.get("NEUROROUTE_FAKE_UPSTREAM", "").strip()
        if forced == "0":
            return None
        if forced != "1":
            has_key = any(resolve_api_key(p).value for p in Provider.objects.filter(enabled=True))
            lmstudio = settings.NEUROROUTE["LMSTUDIO_BASE_URL"]
            if has_key or _listening(lmstudio):
                return None
        port = _free_port()
        fake = subprocess.Popen(
            [sys.executable, "-m", "providers.fake_upstream", "--port", str(port), "--latency-ms", "150", "--chunk-interval-ms", "40"],
            cwd=settings.BASE_DIR,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if _listening(url):
                break
            time.sleep(0.05)
        env["NEUROROUTE_FAKE_UPSTREAM_URL"] = url
        self.stdout.write(
            self.style.WARNING(
                f"\n{BANNER}\nNO LLM BACKEND CONFIGURED: using the bundled FAKE upstream at {url}.\n"
                "Answers are canned text; routing decisions are real. Add a provider key in the\n"
                "admin (or OPENAI_API_KEY / ANTHROPIC_API_KEY), or start LM Studio, then restart.\n"
                f"Set NEUROROUTE_FAKE_UPSTREAM=0 to never use it.\n{BANNER}"
            )
        )
        return fake
