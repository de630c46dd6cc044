"""Request-log rows, written in batches off the event loop.

A row per request is not negotiable, but an INSERT per request on the hot
path would be: rows are queued in memory and a background thread commits
them in one transaction every LOG_FLUSH_INTERVAL seconds, or as soon as
WAKE_ROWS are waiting. Small, frequent batches keep each burst of database
work short (on a shared machine a long one shows up in other requests'
p99). The writer keeps its connection between batches and hands it back
when idle or after a failure; failed flushes are retried with a growing
pause (rows stay queued meanwhile, up to MAX_QUEUED_ROWS: past that the
oldest are dropped and counted in an error, so a long database outage
cannot exhaust the worker's memory; each request also has its JSON log
line). Shutdown (ASGI lifespan, atexit)
flushes whatever is queued, so graceful restarts lose nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
from django.conf import settings
from django.db import (
    DataError,
    IntegrityError,
    close_old_connections,
    connection,
    models,
    transaction,
)

logger = logging.getLogger("neuroroute.requestlog")
BATCH_SIZE = 500  # rows per INSERT
WAKE_ROWS = 64  # queued rows that start a flush before the interval is up
MAX_RETRY_PAUSE = 5.0  # seconds between flush attempts while the database fails
MAX_QUEUED_ROWS = 100_000  # ~2 KB each: a bound on a worker's memory during an outage


class RequestLogWriter:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._dropped = 0
        self._dropped_lock = threading.Lock()

    def add(self, row: dict[str, Any]) -> None:
        if len(self._queue) >= MAX_QUEUED_ROWS:
            self._queue.popleft()
            with self._dropped_lock:
                self._dropped += 1
        self._queue.append(row)
        if self._thread is None:
            self._start()
        if len(self._queue) >= WAKE_ROWS and not self._wake.is_set():
            self._wake.set()

    def pending(self) -> int:
        return len(self._queue)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="request-log-writer", daemon=True
                )
                self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        interval = settings.NEUROROUTE["LOG_FLUSH_INTERVAL"]
        failures = 0
        while not stop.is_set():
            if failures:
                # Not woken by new rows: a failing database is retried at a
                # growing pause, not once per request.
                stop.wait(min(MAX_RETRY_PAUSE, max(interval, 0.1) * 2 ** min(failures - 1, 8)))
            else:
                self._wake.wait(interval)
            self._wake.clear()
            try:
                if self._queue:
                    self.flush()
                else:
                    close_old_connections()  # idle: hand the connection back
                failures = 0
            except Exception:  # the writer thread must survive a database outage
                failures += 1
                logger.exception("request log flush failed; rows kept for the next try")
                with contextlib.suppress(Exception):
                    close_old_connections()  # a broken connection is replaced on the next try
            if self._dropped:
                with self._dropped_lock:
                    dropped, self._dropped = self._dropped, 0
                logger.error(
                    "request log queue full: oldest rows dropped", extra={"dropped": dropped, "kept": len(self._queue)}
                )
        try:
            self.flush()
        except Exception:
            logger.exception("request log rows could not be written on stop; they stay queued")
        finally:
            connection.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued and end the writer thread (a later add() starts a new one)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stop.set()
            self._wake.set()
        thread.join(timeout)

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
                    written += len(batch)
                except (DataError, IntegrityError):
                    # Some row the database will never take: it must not hold
                    # back the rest, so write them one by one.
                    written += self._insert_each(batch)
                except Exception:
                    # Keep the rows (in order) and let the caller see the failure.
                    self._queue.extendleft(reversed(batch))
                    raise
        return written

    def _insert_each(self, batch: list[dict[str, Any]]) -> int:
        written = 0
        for index, row in enumerate(batch):
            try:
                _insert_rows([row])
                written += 1
            except (DataError, IntegrityError) as exc:
                logger.error(
                    "request log row rejected by the database; dropped",
                    extra={"request_id": str(row.get("request_id")), "error": str(exc)[:300]},
                )
            except Exception:
                self._queue.extendleft(reversed(batch[index:]))
                raise
        return written

    def flush_at_exit(self) -> None:
        try:
            self.stop()
        except Exception:
            logger.exception("request log writer did not stop cleanly")
        if self._queue:
            try:
                self.flush()
            finally:
                connection.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _converter(field: models.Field) -> Callable[[Any], Any] | None:
    """How one column's Python value becomes a query parameter (None: as it is).

    Field.get_db_prep_save does the same generically, at several times the
    cost; on a busy gateway that cost lands on the event loop's GIL.
    """
    ops = connection.ops
    if isinstance(field, models.JSONField):
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            return lambda value: Jsonb(value, dumps=_json_text)
        return _json_text
    if isinstance(field, models.UUIDField):
        return None if connection.features.has_native_uuid_field else (lambda value: value.hex)
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, models.DecimalField):
        return lambda value: ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)
    return None


@cache
def _insert_plan(vendor: str) -> tuple[str, tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]]:
    from routing.models import RequestLog

    fields = [f for f in RequestLog._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(RequestLog._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    return sql, tuple((f.attname, f.get_default(), _converter(f)) for f in fields)


def _insert_rows(rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT per batch, its parameters converted field by field."""
    sql, plan = _insert_plan(connection.vendor)
    params = []
    for row in rows:
        values = []
        for name, default, convert in plan:
            value = row.get(name, default)
            values.append(convert(value) if convert is not None and value is not None else value)
        params.append(values)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A log batch may be lost with the server's last few milliseconds
            # (as queued rows are with a killed worker); not waiting for the
            # WAL flush keeps the writer from holding a connection meanwhile.
            cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.executemany(sql, params)


request_log_writer = RequestLogWriter()
atexit.register(request_log_writer.flush_at_exit)
