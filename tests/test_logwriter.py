"""The request-log writer thread: early flushes under load, interval flushes, clean stop."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from routing import logwriter
from routing.logwriter import WAKE_ROWS, RequestLogWriter
from routing.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def row(tag: str) -> dict:
    return {"request_id": uuid.uuid4(), "created_at": timezone.now(), "endpoint": "prompt", "status": "ok", "prompt": tag}


def written(tag: str) -> int:
    return RequestLog.objects.filter(prompt=tag).count()


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def writer(settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "LOG_FLUSH_INTERVAL": 60.0}
    writer = RequestLogWriter()
    yield writer
    writer.stop()


def test_a_busy_queue_is_written_without_waiting_for_the_interval(writer):
    tag = uuid.uuid4().hex
    for _ in range(WAKE_ROWS - 1):
        writer.add(row(tag))
    time.sleep(0.3)
    assert written(tag) == 0  # below WAKE_ROWS the writer waits for its (60 s) interval

    writer.add(row(tag))

    assert wait_until(lambda: written(tag) == WAKE_ROWS)
    assert writer.pending() == 0


def test_stop_writes_what_is_queued_and_a_later_row_starts_a_new_writer(writer):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    writer.add(row(first))
    writer.stop()
    assert written(first) == 1

    writer.add(row(second))
    writer.stop()
    assert written(second) == 1


def test_rows_are_written_on_the_interval(settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "LOG_FLUSH_INTERVAL": 0.05}
    writer = RequestLogWriter()
    tag = uuid.uuid4().hex
    try:
        writer.add(row(tag))
        assert wait_until(lambda: written(tag) == 1)
    finally:
        writer.stop()


def test_a_failing_database_is_retried_at_a_pause_and_loses_nothing(settings, caplog):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "LOG_FLUSH_INTERVAL": 0.05}
    table = connection.ops.quote_name(RequestLog._meta.db_table)
    hidden = connection.ops.quote_name("request_log_away")
    writer = RequestLogWriter()
    tag = uuid.uuid4().hex
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {hidden}")  # every insert now fails
    try:
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            writer.add(row(tag))  # a busy gateway keeps waking the writer
            time.sleep(0.002)
        failures = [r for r in caplog.records if r.name == "neuroroute.requestlog" and "flush failed" in r.getMessage()]
        # Pauses of 0.05, 0.1, 0.2, 0.4 s: a handful of attempts in a second, not hundreds.
        assert 1 <= len(failures) <= 6, len(failures)
        queued = writer.pending()
        assert queued > WAKE_ROWS
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {hidden} RENAME TO {table}")
    writer.stop()
    assert written(tag) == queued


def test_a_row_the_database_rejects_is_dropped_alone(writer, caplog):
    tag = uuid.uuid4().hex
    rows = [row(tag) for _ in range(5)]
    rows[2]["endpoint"] = None  # NOT NULL: this one can never be stored

    for item in rows:
        writer.add(item)
    writer.stop()

    assert written(tag) == 4
    assert writer.pending() == 0
    rejected = [r for r in caplog.records if "rejected by the database" in r.getMessage()]
    assert [r.request_id for r in rejected] == [str(rows[2]["request_id"])]


def test_a_long_outage_keeps_the_newest_rows_up_to_the_bound(settings, caplog, monkeypatch):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "LOG_FLUSH_INTERVAL": 0.05}
    monkeypatch.setattr(logwriter, "MAX_QUEUED_ROWS", 100)
    table = connection.ops.quote_name(RequestLog._meta.db_table)
    hidden = connection.ops.quote_name("request_log_away")
    writer = RequestLogWriter()
    rows = [row(f"outage {i}") for i in range(250)]
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {hidden}")
    try:
        for item in rows:
            writer.add(item)
        assert writer.pending() == 100
        assert wait_until(lambda: any("queue full" in r.getMessage() for r in caplog.records))
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {hidden} RENAME TO {table}")
    writer.stop()
    kept = set(RequestLog.objects.filter(prompt__startswith="outage ").values_list("prompt", flat=True))
    assert kept == {f"outage {i}" for i in range(150, 250)}
    assert sum(r.dropped for r in caplog.records if "queue full" in r.getMessage()) == 150
