"""SIGTERM lets in-flight streams finish, and their log rows are written."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture
def gateway_env(tmp_path, fake_upstream):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        NEUROROUTE_ENV="production",
        SECRET_KEY="s" * 50,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        NEUROROUTE_DATA_DIR=str(tmp_path),
        NEUROROUTE_LOG_TO_FILE="0",
        NEUROROUTE_FAKE_UPSTREAM_URL=fake_upstream.url,
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="1",
        GRACEFUL_TIMEOUT="20",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    token = subprocess.run(
        [*manage, "create_client_token", "shutdown-test"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    return env, token, tmp_path / "neuroroute.sqlite3"


def test_sigterm_lets_an_inflight_stream_finish_and_logs_it(gateway_env):
    env, token, database = gateway_env
    port = free_port()
    env = {**env, "PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "neuroroute_site/gunicorn_conf.py", "neuroroute_site.asgi:application"],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_listening(port)
        body = {"prompt": "tell me a story [[fault:slow_stream interval_ms=100]]", "stream": True, "metadata": {"model": "openai"}}
        events = []
        with httpx.stream(
            "POST", f"http://127.0.0.1:{port}/prompt", json=body,
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                    if events.count("delta") == 2:
                        server.send_signal(signal.SIGTERM)  # mid-stream
        assert events[-1] == "done"
        assert events.count("delta") >= 10
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    with sqlite3.connect(database) as db:
        rows = db.execute("select status, stream, length(response) from routing_requestlog").fetchall()
    assert len(rows) == 1
    status, stream, length = rows[0]
    assert (status, stream) == ("ok", 1) and length > 0
