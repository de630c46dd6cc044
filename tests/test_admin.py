"""The admin is the product: every page renders, secrets stay secret, logs stay cheap."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from keys.models import ClientToken, ProviderAPIKey, hash_token
from providers.models import ModelEntry, Provider
from routing.models import ClassifierVersion, RequestLog, RoutingExample, RoutingRule

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.history_test_urls")]

PLAINTEXT_KEY = "sk-live-ThisIsThePlaintextKey-123456789"
SECOND_KEY = "sk-live-AnotherPlaintextKey-987654321"


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
        "route_reason": "rule 'hello' matched",
        "route_rule": "hello",
        "status": RequestLog.Status.OK,
        "prompt": "hello there",
        "response": "hi",
        "decision": {"model": "local", "step": "rule"},
        "attempts": [{"model": "local", "provider": "lmstudio", "duration_ms": 12.5, "ok": True}],
        "latency_ms": 15.0,
        "prompt_tokens": 2,
        "completion_tokens": 1,
        "cost_usd": Decimal(0),
    }
    values.update(fields)
    return RequestLog.objects.create(**values)


@pytest.fixture
def one_of_everything(db):
    openai = Provider.objects.get(name="openai")
    ProviderAPIKey.objects.create(provider=openai, key=PLAINTEXT_KEY, label="main")
    ClientToken.issue(name="reporting")
    RoutingExample.objects.create(text="what is 2 + 2", intent="simple_math", source="seed")
    ClassifierVersion.objects.create(status=ClassifierVersion.Status.READY, examples_count=10)
    make_log()


ADMIN_MODELS = [
    "providers_provider",
    "providers_modelentry",
    "keys_providerapikey",
    "keys_clienttoken",
    "routing_routingrule",
    "routing_routingexample",
    "routing_classifierversion",
    "routing_requestlog",
]
MODELS = {
    "providers_provider": Provider,
    "providers_modelentry": ModelEntry,
    "keys_providerapikey": ProviderAPIKey,
    "keys_clienttoken": ClientToken,
    "routing_routingrule": RoutingRule,
    "routing_routingexample": RoutingExample,
    "routing_classifierversion": ClassifierVersion,
    "routing_requestlog": RequestLog,
}


@pytest.mark.parametrize("name", ADMIN_MODELS)
def test_changelist_and_change_form_render(operator, one_of_everything, name):
    response = operator.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 200

    obj = MODELS[name].objects.first()
    response = operator.get(reverse(f"admin:{name}_change", args=[obj.pk]))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "providers_provider",
        "providers_modelentry",
        "keys_providerapikey",
        "keys_clienttoken",
        "routing_routingrule",
        "routing_routingexample",
    ],
)
def test_add_form_renders(operator, name):
    assert operator.get(reverse(f"admin:{name}_add")).status_code == 200


def test_provider_list_shows_where_each_key_comes_from(operator, monkeypatch):
    openai = Provider.objects.get(name="openai")
    ProviderAPIKey.objects.create(provider=openai, key=PLAINTEXT_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    monkeypatch.delenv("LMSTUDIO_API_KEY", raising=False)
    Provider.objects.filter(name="anthropic").update(
        key_failing_since=timezone.now(), key_error="401 invalid x-api-key"
    )

    html = operator.get(reverse("admin:providers_provider_changelist")).content.decode()

    assert "stored" in html
    assert "env (ANTHROPIC_API_KEY)" in html
    assert "failing since" in html
    assert "none" in html
    assert PLAINTEXT_KEY not in html and "sk-ant-from-env" not in html


# ---- model registry ------------------------------------------------------------


def model_entry_post(**overrides) -> dict:
    data = {
        "key": "mini",
        "provider": Provider.objects.get(name="openai").pk,
        "upstream_model": "gpt-4o-mini",
        "enabled": "on",
        "tier": "2",
        "context_window": "128000",
        "max_output_tokens": "4096",
        "input_price_per_mtok": "0.15",
        "output_price_per_mtok": "0.60",
        "capabilities": ["code", "chat"],
        "fallbacks": "anthropic, local",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_model_entry_stores_checked_capabilities_and_ordered_fallbacks(operator):
    response = operator.post(reverse("admin:providers_modelentry_add"), model_entry_post())

    assert response.status_code == 302
    entry = ModelEntry.objects.get(key="mini")
    assert entry.capabilities == ["chat", "code"]  # in CAPABILITIES order
    assert entry.fallbacks == ["anthropic", "local"]

    html = operator.get(
        reverse("admin:providers_modelentry_change", args=[entry.pk])
    ).content.decode()
    assert 'value="anthropic, local"' in html
    assert 'type="checkbox" name="capabilities" value="code"' in html


def test_model_entry_rejects_unknown_fallback_keys(operator):
    response = operator.post(
        reverse("admin:providers_modelentry_add"),
        model_entry_post(fallbacks="anthropic, nosuchmodel"),
    )

    assert response.status_code == 200
    assert "Unknown model keys: nosuchmodel" in response.content.decode()
    assert not ModelEntry.objects.filter(key="mini").exists()


def test_model_entry_rejects_unknown_capability(operator):
    response = operator.post(
        reverse("admin:providers_modelentry_add"), model_entry_post(capabilities=["telepathy"])
    )

    assert response.status_code == 200
    assert not ModelEntry.objects.filter(key="mini").exists()


# ---- provider API keys ---------------------------------------------------------


def add_key(operator, key: str, *, provider: str = "openai", label: str = ""):
    return operator.post(
        reverse("admin:keys_providerapikey_add"),
        {
            "provider": Provider.objects.get(name=provider).pk,
            "new_key": key,
            "label": label,
            "is_active": "on",
            "_save": "Save",
        },
    )


def all_change_messages() -> str:
    return " ".join(f"{e.object_repr} {e.change_message}" for e in LogEntry.objects.all())


def test_key_plaintext_never_rendered_nor_logged(operator):
    assert add_key(operator, PLAINTEXT_KEY, label="prod").status_code == 302
    api_key = ProviderAPIKey.objects.get()
    assert api_key.key == PLAINTEXT_KEY  # stored (encrypted) and decrypts

    change_url = reverse("admin:keys_providerapikey_change", args=[api_key.pk])
    change_page = operator.get(change_url).content.decode()
    list_page = operator.get(reverse("admin:keys_providerapikey_changelist")).content.decode()
    history_page = operator.get(
        reverse("admin:keys_providerapikey_history", args=[api_key.pk])
    ).content.decode()

    for html in (change_page, list_page, history_page):
        assert PLAINTEXT_KEY not in html
    assert api_key.masked in change_page and api_key.masked in list_page
    assert 'type="password" name="new_key"' in change_page
    assert PLAINTEXT_KEY not in all_change_messages()

    # Replacing the key on edit is logged, without the value either.
    response = operator.post(
        change_url, {"new_key": SECOND_KEY, "label": "prod", "is_active": "on", "_save": "Save"}
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.key == SECOND_KEY
    assert SECOND_KEY not in all_change_messages()
    assert SECOND_KEY not in operator.get(change_url).content.decode()


def test_blank_key_on_edit_keeps_the_stored_key(operator):
    add_key(operator, PLAINTEXT_KEY)
    api_key = ProviderAPIKey.objects.get()

    response = operator.post(
        reverse("admin:keys_providerapikey_change", args=[api_key.pk]),
        {"new_key": "", "label": "renamed", "is_active": "on", "_save": "Save"},
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.key == PLAINTEXT_KEY
    assert api_key.label == "renamed"


def test_key_is_required_when_adding(operator):
    response = add_key(operator, "")

    assert response.status_code == 200
    assert not ProviderAPIKey.objects.exists()


def test_key_with_whitespace_is_rejected(operator):
    response = add_key(operator, "sk-pasted with a space")

    assert response.status_code == 200
    assert not ProviderAPIKey.objects.exists()


def test_saving_a_new_key_deactivates_the_previous_one(operator):
    add_key(operator, PLAINTEXT_KEY, label="old")
    add_key(operator, SECOND_KEY, label="new")
    add_key(operator, "sk-unrelated-provider-key", provider="anthropic")

    openai_keys = {k.label: k for k in ProviderAPIKey.objects.filter(provider__name="openai")}
    assert openai_keys["old"].is_active is False
    assert openai_keys["new"].is_active is True
    assert openai_keys["new"].key == SECOND_KEY
    assert ProviderAPIKey.objects.get(provider__name="anthropic").is_active is True


def test_reactivating_an_old_key_deactivates_the_current_one(operator):
    add_key(operator, PLAINTEXT_KEY, label="old")
    add_key(operator, SECOND_KEY, label="new")
    old = ProviderAPIKey.objects.get(label="old")

    response = operator.post(
        reverse("admin:keys_providerapikey_change", args=[old.pk]),
        {"new_key": "", "label": "old", "is_active": "on", "_save": "Save"},
    )

    assert response.status_code == 302
    assert ProviderAPIKey.objects.get(label="old").is_active is True
    assert ProviderAPIKey.objects.get(label="new").is_active is False


# ---- client tokens -------------------------------------------------------------


def test_token_add_shows_raw_token_once_and_stores_only_its_hash(operator):
    response = operator.post(
        reverse("admin:keys_clienttoken_add"),
        {"name": "billing-app", "is_admin": "on", "priority": "cost", "_save": "Save"},
    )
    assert response.status_code == 302

    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    raw = re.search(r"nr_[A-Za-z0-9_\-]+", shown).group(0)
    token = ClientToken.objects.get(name="billing-app")
    assert token.token_hash == hash_token(raw)
    assert token.is_admin is True and token.priority == "cost"
    stored = [str(getattr(token, f.attname)) for f in ClientToken._meta.concrete_fields]
    assert raw not in stored

    # Shown on the page the admin redirects to, then never again.
    assert raw in operator.get(response.url).content.decode()
    for url in (
        response.url,
        reverse("admin:keys_clienttoken_changelist"),
        reverse("admin:keys_clienttoken_change", args=[token.pk]),
        reverse("admin:keys_clienttoken_history", args=[token.pk]),
    ):
        html = operator.get(url).content.decode()
        assert raw not in html
        assert token.token_hash not in html
    assert raw not in all_change_messages()


def test_deactivate_action_disables_tokens(operator):
    token, _raw = ClientToken.issue(name="leaked")

    response = operator.post(
        reverse("admin:keys_clienttoken_changelist"),
        {"action": "deactivate", "_selected_action": [token.pk]},
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.is_active is False


# ---- routing rules and classifier ----------------------------------------------


def test_rule_phrases_are_edited_one_per_line(operator):
    response = operator.post(
        reverse("admin:routing_routingrule_add"),
        {
            "name": "greetings",
            "target": ModelEntry.objects.get(key="local").pk,
            "priority": "120",
            "enabled": "on",
            "phrases": "good morning\r\n  hi there  \r\n\r\ngood morning\r\n",
            "pattern": "",
            "notes": "",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    rule = RoutingRule.objects.get(name="greetings")
    assert rule.phrases == ["good morning", "hi there"]
    html = operator.get(
        reverse("admin:routing_routingrule_change", args=[rule.pk])
    ).content.decode()
    assert "good morning\nhi there</textarea>" in html


def test_rule_priority_and_switches_are_edited_in_the_list(operator):
    rules = list(RoutingRule.objects.order_by("-priority", "name"))
    target = RoutingRule.objects.get(name="legal")
    data = {
        "form-TOTAL_FORMS": str(len(rules)),
        "form-INITIAL_FORMS": str(len(rules)),
        "_save": "Save",
    }
    for i, rule in enumerate(rules):
        data[f"form-{i}-id"] = str(rule.pk)
        data[f"form-{i}-priority"] = "500" if rule == target else str(rule.priority)
        if rule.enabled:
            data[f"form-{i}-enabled"] = "on"
        if rule.hint_only and rule != target:  # make the legal rule decisive
            data[f"form-{i}-hint_only"] = "on"

    response = operator.post(reverse("admin:routing_routingrule_changelist"), data)

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.priority == 500 and target.hint_only is False
    first = (
        operator.get(reverse("admin:routing_routingrule_changelist")).context["cl"].result_list[0]
    )
    assert first == target  # highest priority first


def test_rule_search_finds_phrases(operator):
    html = operator.get(
        reverse("admin:routing_routingrule_changelist"), {"q": "long document"}
    ).content.decode()

    assert "long document" in html
    assert "basic math" not in html


def test_disable_action_turns_rules_off(operator):
    rule = RoutingRule.objects.get(name="hello")

    operator.post(
        reverse("admin:routing_routingrule_changelist"),
        {"action": "disable", "_selected_action": [rule.pk]},
    )

    rule.refresh_from_db()
    assert rule.enabled is False


def test_activate_action_switches_the_live_classifier(operator):
    old = ClassifierVersion.objects.create(status=ClassifierVersion.Status.READY, is_active=True)
    new = ClassifierVersion.objects.create(status=ClassifierVersion.Status.READY)

    operator.post(
        reverse("admin:routing_classifierversion_changelist"),
        {"action": "activate", "_selected_action": [new.pk]},
    )

    old.refresh_from_db()
    new.refresh_from_db()
    assert new.is_active is True and old.is_active is False


def test_classifier_versions_are_read_only(operator):
    version = ClassifierVersion.objects.create(status=ClassifierVersion.Status.READY)

    assert operator.get(reverse("admin:routing_classifierversion_add")).status_code == 403
    response = operator.post(
        reverse("admin:routing_classifierversion_change", args=[version.pk]), {"status": "failed"}
    )
    assert response.status_code == 403


# ---- request log ---------------------------------------------------------------


def test_request_log_denies_add_change_and_delete(operator):
    log = make_log()

    assert operator.get(reverse("admin:routing_requestlog_add")).status_code == 403
    change_url = reverse("admin:routing_requestlog_change", args=[log.pk])
    assert operator.get(change_url).status_code == 200  # viewable
    assert operator.post(change_url, {"status": "error"}).status_code == 403
    delete_url = reverse("admin:routing_requestlog_delete", args=[log.pk])
    assert operator.get(delete_url).status_code == 403
    assert operator.post(delete_url, {"post": "yes"}).status_code == 403
    log.refresh_from_db()
    assert log.status == RequestLog.Status.OK


def test_request_log_detail_escapes_and_pretty_prints(operator):
    log = make_log(
        prompt="<script>alert('x')</script>", decision={"model": "local", "step": "rule"}
    )

    html = operator.get(reverse("admin:routing_requestlog_change", args=[log.pk])).content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html
    assert "&quot;step&quot;: &quot;rule&quot;" in html
    assert reverse("history-detail", args=[log.request_id]) in html


def test_request_log_filters_narrow_the_list(operator):
    hit = make_log(model_key="openai", status=RequestLog.Status.UPSTREAM_ERROR, cache_hit=True)
    make_log(model_key="local", endpoint="messages")

    response = operator.get(
        reverse("admin:routing_requestlog_changelist"),
        {"model_key": "openai", "status__exact": "upstream_error", "cache_hit__exact": "1"},
    )

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [hit]
    html = response.content.decode()
    # Filter choices come from the registry and recent endpoints.
    assert "model_key=anthropic" in html
    assert "endpoint=messages" in html


def test_request_log_search_by_request_id_and_user(operator):
    target = make_log(user_id="user-42")
    make_log(user_id="user-7")
    url = reverse("admin:routing_requestlog_changelist")

    by_id = operator.get(url, {"q": str(target.request_id)})
    by_user = operator.get(url, {"q": "user-42"})

    assert list(by_id.context["cl"].result_list) == [target]
    assert list(by_user.context["cl"].result_list) == [target]


def is_uncapped_log_count(sql: str) -> bool:
    sql = sql.lower()
    return "count(" in sql and "routing_requestlog" in sql and " limit " not in sql


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status__exact": "ok"},
        {"model_key": "local", "q": "hello"},
        {"p": "2"},
        {"_facets": "True"},  # facet counts are switched off for the log
    ],
)
def test_request_log_changelist_never_counts_the_whole_table(operator, params):
    RequestLog.objects.bulk_create(
        RequestLog(
            created_at=timezone.now(), endpoint="chat.completions", model_key="local", status="ok"
        )
        for _ in range(120)
    )

    with CaptureQueriesContext(connection) as queries:
        response = operator.get(reverse("admin:routing_requestlog_changelist"), params)

    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if is_uncapped_log_count(q["sql"])]
    assert counts == []
    capped = [q["sql"] for q in queries.captured_queries if "routing_requestlog" in q["sql"]]
    assert any("COUNT(" in sql and " LIMIT " in sql for sql in capped)
