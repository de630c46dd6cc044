"""Request history pages: what was routed where, why, how fast and at what cost.

The request log grows without bound, so the list never counts it: it pages
with a keyset cursor on (created_at, id), which the created_at index serves
at any depth.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from providers.models import ModelEntry
from routing.models import RequestLog

PAGE_SIZE = 50
# How many recent rows are sampled to offer endpoint choices (see recent_endpoints).
ENDPOINT_SAMPLE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def recent_endpoints() -> list[str]:
    """Endpoints seen in the latest requests, for filter choices.

    A DISTINCT over the whole log would scan it; the gateway has a handful of
    endpoints, and the most recent thousand requests show every one in use.
    """
    sample = RequestLog.objects.order_by("-created_at").values_list("endpoint", flat=True)[
        :ENDPOINT_SAMPLE
    ]
    return sorted(set(sample))


def pretty_json(value: Any) -> str:
    """Indented JSON for <pre> blocks; the template escapes it."""
    if value in (None, "", [], {}):
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


class HistoryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    model = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *RequestLog.Status.choices]
    )
    endpoint = forms.ChoiceField(required=False)
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    cache = forms.ChoiceField(
        required=False,
        label="Cache",
        choices=[("", "cached or not"), ("hit", "cache hit"), ("miss", "cache miss")],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = list(ModelEntry.objects.values_list("key", flat=True))
        endpoints = recent_endpoints()
        # Keep a filter that is already applied selectable even when the
        # registry entry was deleted or the endpoint fell out of the sample.
        for name, known in (("model", models), ("endpoint", endpoints)):
            current = self.data.get(name) if self.is_bound else None
            if current and current not in known:
                known.append(current)
        self.fields["model"].choices = [("", "any model"), *((k, k) for k in models)]
        self.fields["endpoint"].choices = [("", "any endpoint"), *((e, e) for e in endpoints)]

    def filter(self, queryset: QuerySet[RequestLog]) -> QuerySet[RequestLog]:
        data = self.cleaned_data
        if data.get("model"):
            queryset = queryset.filter(model_key=data["model"])
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if data.get("endpoint"):
            queryset = queryset.filter(endpoint=data["endpoint"])
        # Day bounds as datetimes (not created_at__date) so the index is used.
        tz = timezone.get_current_timezone()
        if data.get("date_from"):
            queryset = queryset.filter(
                created_at__gte=datetime.combine(data["date_from"], time.min, tz)
            )
        if data.get("date_to"):
            next_day = data["date_to"] + timedelta(days=1)
            queryset = queryset.filter(created_at__lt=datetime.combine(next_day, time.min, tz))
        if data.get("cache") == "hit":
            queryset = queryset.filter(cache_hit=True)
        elif data.get("cache") == "miss":
            queryset = queryset.filter(cache_hit=False)
        if query := data.get("q", "").strip():
            condition = Q(prompt__icontains=query) | Q(user_id__icontains=query)
            try:
                condition |= Q(request_id=uuid.UUID(query))
            except ValueError:
                pass  # not a request id; prompt and user id still apply
            queryset = queryset.filter(condition)
        return queryset


def encode_cursor(log: RequestLog) -> str:
    micros = (log.created_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{log.pk}"


def decode_cursor(value: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = (int(part) for part in value.split("_", 1))
        return EPOCH + timedelta(microseconds=micros), pk
    except (TypeError, ValueError, OverflowError):
        return None


def _page_query(params: QueryDict, **cursor: str) -> str:
    """The current filters with the paging cursor replaced."""
    query = params.copy()
    for name in ("before", "after"):
        query.pop(name, None)
    query.update(cursor)
    return query.urlencode()


@staff_member_required
def history_list(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    # The list shows none of the bulky columns; prompts alone may be huge.
    queryset = RequestLog.objects.select_related("client").defer(
        "prompt", "response", "decision", "attempts", "metadata", "error"
    )
    if form.is_bound and form.is_valid():
        queryset = form.filter(queryset)
    elif form.is_bound:
        queryset = queryset.none()

    before = decode_cursor(request.GET.get("before", ""))
    after = decode_cursor(request.GET.get("after", ""))
    if after:
        # Newer page: walk forwards from the cursor, then show newest first.
        at, pk = after
        rows = list(
            queryset.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk)).order_by(
                "created_at", "pk"
            )[: PAGE_SIZE + 1]
        )
        has_newer, has_older = len(rows) > PAGE_SIZE, True
        rows = rows[:PAGE_SIZE][::-1]
    else:
        if before:
            at, pk = before
            queryset = queryset.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
        rows = list(queryset.order_by("-created_at", "-pk")[: PAGE_SIZE + 1])
        has_newer, has_older = before is not None, len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]

    newer_query = older_query = ""
    if rows and has_newer:
        newer_query = _page_query(request.GET, after=encode_cursor(rows[0]))
    if rows and has_older:
        older_query = _page_query(request.GET, before=encode_cursor(rows[-1]))
    context = {
        "form": form,
        "logs": rows,
        "newest_query": _page_query(request.GET),
        "newer_query": newer_query,
        "older_query": older_query,
        "is_first_page": not (before or after),
    }
    return render(request, "history/list.html", context)


@staff_member_required
def history_detail(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    log = get_object_or_404(RequestLog.objects.select_related("client"), request_id=request_id)
    attempts = log.attempts if isinstance(log.attempts, list) else []
    context = {
        "log": log,
        "decision_json": pretty_json(log.decision),
        "metadata_json": pretty_json(log.metadata),
        "attempts": [a for a in attempts if isinstance(a, dict)],
        "attempts_json": pretty_json(log.attempts),
    }
    return render(request, "history/detail.html", context)
