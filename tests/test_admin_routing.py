"""The routing admin: try a prompt, curate examples, train and choose classifier versions."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from routing.classifier import train
from routing.gateway_config import config_store
from routing.models import ClassifierVersion, RoutingExample

pytestmark = pytest.mark.django_db

TRY_URL = "admin:routing_routingrule_try"

# Few, short examples: enough for a decisive classifier and a 4-fold
# cross-validation in about two seconds (the shipped set takes minutes).
TINY_EXAMPLES = (
    [(f"write a python function number {i}", "code") for i in range(4)]
    + [(f"hi there friend {i}", "chat") for i in range(4)]
    + [(f"review this contract clause {i}", "legal") for i in range(4)]
)


@pytest.fixture(autouse=True)
def _fresh_config():
    # The config store is per process; earlier tests may have cached rows
    # that their rolled-back transactions removed.
    config_store.invalidate()
    yield
    config_store.invalidate()


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def tiny_classifier(db) -> ClassifierVersion:
    classifier, report = train(list(TINY_EXAMPLES), cross_validate=False)
    version = ClassifierVersion.objects.create(
        status=ClassifierVersion.Status.READY,
        artefact=classifier.to_bytes(),
        labels=list(report.labels),
        examples_count=len(TINY_EXAMPLES),
    )
    version.activate()
    return version


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def upload(name: str, lines: list[str]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "\n".join(lines).encode(), content_type="application/jsonl")


# ---- try a prompt --------------------------------------------------------------


def test_try_a_prompt_form_renders_in_the_admin(operator):
    response = operator.get(reverse(TRY_URL))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="prompt"' in html and 'name="priority"' in html and 'name="model"' in html
    assert '<option value="openai">' in html  # forced-model suggestions from the registry
    assert "Django administration" in html or 'id="site-name"' in html


def test_try_a_prompt_explains_the_routing_decision(operator, tiny_classifier):
    response = operator.post(
        reverse(TRY_URL),
        {"prompt": "write a python function to reverse a linked list", "priority": "", "model": ""},
    )

    assert response.status_code == 200
    explanation = response.context["explanation"]
    assert explanation["model"] == "openai"
    assert explanation["step"] == "classifier"
    assert explanation["intents"][0][0] == "code"
    assert explanation["classifier_version"] == tiny_classifier.pk
    assert explanation["fallbacks"] == ["anthropic", "local"]
    html = response.content.decode()
    for shown in (
        "chosen model",
        "gpt-4-turbo",
        explanation["reason"],
        "Top intents",
        "Model scores",
        "Dropped candidates",
        "runner-up",
        "fallback chain",
        reverse("admin:routing_classifierversion_change", args=[tiny_classifier.pk]),
        "classifier: code",  # the trace
    ):
        assert shown in html


def test_try_a_prompt_shows_matched_rule_and_priority(operator, tiny_classifier):
    response = operator.post(
        reverse(TRY_URL), {"prompt": "review this contract clause", "priority": "cost", "model": ""}
    )

    explanation = response.context["explanation"]
    assert explanation["priority"] == "cost"
    assert explanation["intents"][0][0] == "legal"
    assert "cost priority" in explanation["reason"]


def test_try_a_prompt_with_a_forced_model_is_explicit(operator, tiny_classifier):
    response = operator.post(reverse(TRY_URL), {"prompt": "hi there", "model": "anthropic"})

    explanation = response.context["explanation"]
    assert explanation["model"] == "anthropic" and explanation["step"] == "explicit"


def test_try_a_prompt_with_an_unknown_model_shows_an_error_not_a_500(operator):
    response = operator.post(reverse(TRY_URL), {"prompt": "hi there", "model": "gpt-99"})

    assert response.status_code == 200
    assert response.context["explanation"] is None
    shown = messages_of(response)
    assert any("Unknown model 'gpt-99'" in m for m in shown)
    assert "Unknown model" in response.content.decode()


def test_try_a_prompt_escapes_the_prompt(operator, tiny_classifier):
    response = operator.post(reverse(TRY_URL), {"prompt": "<script>alert('x')</script>"})

    html = response.content.decode()
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html


def test_try_a_prompt_needs_a_prompt(operator):
    response = operator.post(reverse(TRY_URL), {"prompt": ""})

    assert response.status_code == 200
    assert response.context["form"].errors["prompt"]


def test_try_a_prompt_is_staff_only(client):
    response = client.get(reverse(TRY_URL))

    assert response.status_code == 302
    assert reverse("admin:login") in response.url


@pytest.mark.parametrize("changelist", ["routing_routingrule", "routing_routingexample"])
def test_both_changelists_link_to_and_embed_try_a_prompt(operator, changelist):
    html = operator.get(reverse(f"admin:{changelist}_changelist")).content.decode()

    assert f'href="{reverse(TRY_URL)}"' in html
    assert f'action="{reverse(TRY_URL)}"' in html


# ---- examples ------------------------------------------------------------------


def test_example_changelist_counts_examples_per_intent_in_one_query(operator):
    RoutingExample.objects.bulk_create(
        [RoutingExample(text=f"write code {i}", intent="code") for i in range(3)]
        + [RoutingExample(text="hello", intent="chat")]
    )

    with CaptureQueriesContext(connection) as queries:
        response = operator.get(reverse("admin:routing_routingexample_changelist"))

    assert response.context["intent_counts"] == [
        {"intent": "chat", "count": 1},
        {"intent": "code", "count": 3},
    ]
    html = response.content.decode()
    assert "Examples per intent (4 in all)" in html
    assert "?intent__exact=code" in html
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"].upper()]
    assert len(grouped) == 1


def test_import_examples_from_a_jsonl_file(operator):
    lines = [
        json.dumps({"text": "refactor this class", "intent": "code"}),
        "",
        json.dumps({"prompt": "summarise this 80-page filing", "routes": ["anthropic"], "source": "eval"}),
    ]

    response = operator.post(
        reverse("admin:routing_routingexample_import"), {"file": upload("examples.jsonl", lines)}
    )

    assert response.status_code == 302
    assert response.url == reverse("admin:routing_routingexample_changelist")
    assert set(RoutingExample.objects.values_list("text", "intent", "source")) == {
        ("refactor this class", "code", "import"),
        ("summarise this 80-page filing", "anthropic", "eval"),
    }
    assert any("Imported 2 example(s)" in m for m in messages_of(response))


def test_import_records_the_given_source(operator):
    operator.post(
        reverse("admin:routing_routingexample_import"),
        {
            "file": upload("x.jsonl", [json.dumps({"text": "hi", "intent": "chat"})]),
            "source": "support-tickets",
        },
    )

    assert RoutingExample.objects.get().source == "support-tickets"


@pytest.mark.parametrize(
    "lines",
    [
        [json.dumps({"text": "fine", "intent": "code"}), "{not json"],
        [json.dumps({"text": "no label here"})],
        [json.dumps({"intent": "code"})],
    ],
)
def test_import_rejects_a_bad_file_and_imports_nothing(operator, lines):
    response = operator.post(
        reverse("admin:routing_routingexample_import"), {"file": upload("bad.jsonl", lines)}
    )

    assert response.status_code == 200
    assert "Nothing imported" in response.content.decode()
    assert response.context["form"].errors["file"]
    assert not RoutingExample.objects.exists()


def test_load_the_default_example_set_once(operator):
    url = reverse("admin:routing_routingexample_load_defaults")

    assert operator.get(url).status_code == 405
    first = operator.post(url)
    loaded = RoutingExample.objects.filter(source="default").count()
    second = operator.post(url)

    assert first.status_code == 302 and loaded > 100
    assert any(f"Loaded {loaded} default example(s)" in m for m in messages_of(first))
    assert any("already loaded" in m for m in messages_of(second))
    assert RoutingExample.objects.filter(source="default").count() == loaded


def test_example_changelist_offers_import_and_defaults(operator):
    html = operator.get(reverse("admin:routing_routingexample_changelist")).content.decode()

    assert reverse("admin:routing_routingexample_import") in html
    assert reverse("admin:routing_routingexample_load_defaults") in html
    assert operator.get(reverse("admin:routing_routingexample_import")).status_code == 200


# ---- classifier versions -------------------------------------------------------


def test_train_a_new_version_then_activate_it(
    operator, tiny_classifier, django_capture_on_commit_callbacks
):
    # Marked "default" so training uses these instead of loading the shipped set.
    RoutingExample.objects.bulk_create(
        RoutingExample(text=text, intent=intent, source="default") for text, intent in TINY_EXAMPLES
    )
    changelist = reverse("admin:routing_classifierversion_changelist")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = operator.post(reverse("admin:routing_classifierversion_train"))

    assert len(callbacks) == 1
    assert response.status_code == 302 and response.url == changelist
    assert any("Training a new classifier version" in m for m in messages_of(response))
    new = ClassifierVersion.objects.exclude(pk=tiny_classifier.pk).get()
    assert new.status == ClassifierVersion.Status.READY
    assert new.is_active is False
    assert new.cv_accuracy is not None
    assert new.examples_count == len(TINY_EXAMPLES)

    # The operator sees the accuracy before choosing to activate.
    html = operator.get(changelist).content.decode()
    assert f"{new.cv_accuracy:.1%}" in html

    operator.post(changelist, {"action": "activate", "_selected_action": [new.pk]})

    assert list(ClassifierVersion.objects.filter(is_active=True)) == [new]
    assert config_store.get_sync().classifier_version == new.pk


def test_train_is_post_only(operator):
    response = operator.get(reverse("admin:routing_classifierversion_train"))

    assert response.status_code == 405
    assert not ClassifierVersion.objects.exists()


def test_train_needs_the_change_permission(client):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)

    response = client.post(reverse("admin:routing_classifierversion_train"))

    assert response.status_code == 403


def test_version_list_shows_accuracy_and_a_train_button(operator):
    ClassifierVersion.objects.create(
        status=ClassifierVersion.Status.READY, cv_accuracy=0.9, examples_count=321
    )

    html = operator.get(reverse("admin:routing_classifierversion_changelist")).content.decode()

    assert "90.0%" in html and "321" in html
    assert reverse("admin:routing_classifierversion_train") in html
    assert "Train a new version" in html
