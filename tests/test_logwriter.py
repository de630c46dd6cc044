"""The request-log writer thread: early flushes under load, interval flushes, clean stop."""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone

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
