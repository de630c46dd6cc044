"""Request history pages: staff only, filterable, paged without counting, and escaped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from routing.models import RequestLog

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.history_test_urls")]


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


def make_log(**fields) -> RequestLog:
    values = {
        "created_at": timezone.now(),
        "endpoint": "chat.completions",
        "model_key": "local",
        "upstream_model": "local-lmstudio",
        "provider": "lmstudio",
        "route_reason": "classifier: simple_math (0.91)",
        "status": RequestLog.Status.OK,
        "prompt": "what is 2 + 2",
        "response": "4",
        "latency_ms": 120.0,
        "ttft_ms": 35.0,
        "prompt_tokens": 6,
        "completion_tokens": 1,
        "cost_usd": Decimal("0.000123"),
    }
    values.update(fields)
    return RequestLog.objects.create(**values)


def listed(response) -> set:
    return {log.request_id for log in response.context["logs"]}


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    log = make_log()

    for url in (reverse("history-list"), reverse("history-detail", args=[log.request_id])):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_non_staff_users_are_sent_to_the_login_too(client):
    client.force_login(User.objects.create_user("alice", password="x" * 12))

    response = client.get(reverse("history-list"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_list_shows_the_routing_columns(operator):
    log = make_log(model_key="openai", upstream_model="gpt-4-turbo", cache_hit=True)

    response = operator.get(reverse("history-list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("history-detail", args=[log.request_id]) in html
    for text in ("openai", "gpt-4-turbo", "classifier: simple_math (0.91)", "120 ms", "$0.000123"):
        assert text in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "openai"}, "openai"),
        ({"status": "upstream_error"}, "failed"),
        ({"endpoint": "messages"}, "anthropic_api"),
        ({"cache": "hit"}, "cached"),
        ({"q": "contract clause"}, "openai"),
        ({"q": "user-42"}, "anthropic_api"),
        ({"date_to": "__three_days_ago__"}, "old"),
        (
            {"date_from": "__today__", "model": "local", "cache": "miss", "status": "ok"},
            "plain",
        ),
    ],
)
def test_filters_narrow_the_results(operator, params, expected):
    now = timezone.now()
    logs = {
        "openai": make_log(model_key="openai", prompt="review this contract clause"),
        "failed": make_log(status=RequestLog.Status.UPSTREAM_ERROR, http_status=502),
        "anthropic_api": make_log(endpoint="messages", model_key="anthropic", user_id="user-42"),
        "cached": make_log(cache_hit=True),
        "old": make_log(created_at=now - timedelta(days=3)),
        "plain": make_log(),
    }
    dates = {
        "__today__": now.date().isoformat(),
        "__three_days_ago__": (now - timedelta(days=3)).date().isoformat(),
    }
    params = {name: dates.get(value, value) for name, value in params.items()}

    response = operator.get(reverse("history-list"), params)

    assert response.status_code == 200
    assert listed(response) == {logs[expected].request_id}


def test_search_by_request_id(operator):
    target = make_log()
    make_log()

    response = operator.get(reverse("history-list"), {"q": str(target.request_id)})

    assert listed(response) == {target.request_id}


def test_invalid_filter_shows_an_error_not_everything(operator):
    make_log()

    response = operator.get(reverse("history-list"), {"date_from": "not-a-date"})

    assert response.status_code == 200
    assert listed(response) == set()
    assert "Enter a valid date" in response.content.decode()


def test_pages_of_fifty_walk_back_and_forth_without_counting(operator):
    start = timezone.now() - timedelta(hours=1)
    RequestLog.objects.bulk_create(
        RequestLog(
            created_at=start + timedelta(seconds=i // 2),  # pairs share a timestamp
            endpoint="chat.completions",
            model_key="local",
            status="ok",
            prompt=f"prompt {i}",
        )
        for i in range(120)
    )
    newest_first = list(RequestLog.objects.order_by("-created_at", "-pk"))

    with CaptureQueriesContext(connection) as queries:
        first = operator.get(reverse("history-list"))
    second = operator.get(reverse("history-list") + "?" + first.context["older_query"])
    third = operator.get(reverse("history-list") + "?" + second.context["older_query"])
    back = operator.get(reverse("history-list") + "?" + third.context["newer_query"])

    assert first.context["logs"] == newest_first[:50]
    assert second.context["logs"] == newest_first[50:100]
    assert third.context["logs"] == newest_first[100:]
    assert third.context["older_query"] == ""
    assert back.context["logs"] == newest_first[50:100]
    assert not any("count(" in q["sql"].lower() for q in queries.captured_queries)


def test_paging_keeps_the_filters(operator):
    for _ in range(55):
        make_log(model_key="openai")
    make_log(model_key="local")

    first = operator.get(reverse("history-list"), {"model": "openai"})
    second = operator.get(reverse("history-list") + "?" + first.context["older_query"])

    assert "model=openai" in first.context["older_query"]
    assert len(second.context["logs"]) == 5
    assert {log.model_key for log in second.context["logs"]} == {"openai"}


def test_detail_explains_the_route(operator):
    log = make_log(
        model_key="anthropic",
        route_reason="rule 'legal' matched",
        route_rule="legal",
        decision={"model": "anthropic", "step": "rule", "scores": {"anthropic": 1.0}},
        attempts=[
            {
                "model": "openai",
                "provider": "openai",
                "duration_ms": 30.0,
                "ok": False,
                "error": "rate limited",
                "kind": "rate_limit",
                "status": 429,
            },
            {"model": "anthropic", "provider": "anthropic", "duration_ms": 410.5, "ok": True},
        ],
        error="",
    )

    response = operator.get(reverse("history-detail", args=[log.request_id]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "rule &#x27;legal&#x27; matched" in html
    assert "<dt>Matched rule</dt><dd>legal</dd>" in html
    assert "&quot;step&quot;: &quot;rule&quot;" in html  # pretty-printed decision
    assert "rate limited" in html and "HTTP 429" in html
    assert "410.5 ms" in html
    assert "35.0 ms" in html  # time to first token


def test_detail_of_unknown_request_is_404(operator):
    response = operator.get(
        reverse("history-detail", args=["00000000-0000-0000-0000-000000000000"])
    )

    assert response.status_code == 404


def test_prompt_and_response_are_html_escaped(operator):
    log = make_log(
        prompt="<script>alert('pwned')</script>",
        response="<img src=x onerror=alert(1)>",
        user_id="<b>eve</b>",
    )

    html = operator.get(reverse("history-detail", args=[log.request_id])).content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "<b>eve</b>" not in html
