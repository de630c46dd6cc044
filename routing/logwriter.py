"""Request-log rows, written in batches off the event loop.

A row per request is not negotiable, but an INSERT per request on the hot
path would be: rows are queued in memory and a background thread commits
them in one transaction every LOG_FLUSH_INTERVAL seconds. Shutdown (ASGI
lifespan, atexit) flushes whatever is queued, so graceful restarts lose
nothing.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction

logger = logging.getLogger("neuroroute.requestlog")
BATCH_SIZE = 500


class RequestLogWriter:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def add(self, row: dict[str, Any]) -> None:
        self._queue.append(row)
        if self._thread is None:
            self._start()
        if len(self._queue) >= BATCH_SIZE:
            self._wake.set()

    def pending(self) -> int:
        return len(self._queue)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        interval = settings.NEUROROUTE["LOG_FLUSH_INTERVAL"]
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer thread must survive a database outage
                logger.exception("request log flush failed; rows kept for the next try")
            finally:
                close_old_connections()

    def flush(self) -> int:
        """Write every queued row now (thread-safe); returns the count written."""
        written = 0
        with self._flush_lock:
            while self._queue:
                batch = []
                while self._queue and len(batch) < BATCH_SIZE:
                    batch.append(self._queue.popleft())
                try:
                    _insert_rows(batch)
                except Exception:
                    # Keep the rows (in order) and let the caller see the failure.
                    self._queue.extendleft(reversed(batch))
                    raise
                written += len(batch)
        return written

    def flush_at_exit(self) -> None:
        if self._queue:
            try:
                self.flush()
            finally:
                connection.close()


def _insert_rows(rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT per batch.

    bulk_create builds SQL per object through the ORM compiler, which costs
    more CPU than the requests being logged; the fields' own conversions
    (JSON, UUID, decimals, datetimes) are kept, only the SQL is built once.
    """
    from routing.models import RequestLog

    fields = [f for f in RequestLog._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(RequestLog._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    defaults = {f.attname: f.get_default() for f in fields}
    params = [
        [f.get_db_prep_save(row.get(f.attname, defaults[f.attname]), connection) for f in fields] for row in rows
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


request_log_writer = RequestLogWriter()
atexit.register(request_log_writer.flush_at_exit)
