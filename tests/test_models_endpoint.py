"""/models: the registry clients can name, straight from the database."""

from __future__ import annotations

from rest_framework.test import APIClient

from providers.models import ModelEntry, Provider


def test_lists_enabled_models_keyed_by_model_key(api):
    response = api.get("/models")

    assert response.status_code == 200
    registry = response.json()
    assert set(registry) == {"local", "openai", "anthropic"}
    assert registry["local"] == {
        "name": "local-lmstudio",
        "provider": "lmstudio",
        "provider_kind": "openai_compatible",
        "capabilities": ["basic", "chat", "simple_math", "file_creation"],
        "max_tokens": 4096,
        "max_output_tokens": 2048,
        "input_price_per_mtok": 0.0,
        "output_price_per_mtok": 0.0,
        "tier": 1,
        "fallbacks": ["openai"],
        "enabled": True,
    }
    assert registry["openai"]["input_price_per_mtok"] == 10.0
    assert registry["anthropic"]["max_tokens"] == 200000


def test_disabled_models_are_hidden_unless_all_is_asked_for(api):
    ModelEntry.objects.filter(key="anthropic").update(enabled=False)

    assert "anthropic" not in api.get("/models").json()
    everything = api.get("/models?all=1").json()
    assert everything["anthropic"]["enabled"] is False
    assert set(everything) == {"local", "openai", "anthropic"}


def test_models_of_a_disabled_provider_are_hidden(api):
    Provider.objects.filter(name="lmstudio").update(enabled=False)

    assert "local" not in api.get("/models").json()
    assert "local" in api.get("/models?all=true").json()


def test_new_registry_entries_show_up_without_a_restart(api):
    ModelEntry.objects.create(
        key="mini",
        provider=Provider.objects.get(name="openai"),
        upstream_model="gpt-4o-mini",
        capabilities=["chat"],
        context_window=128000,
    )

    assert api.get("/models").json()["mini"]["name"] == "gpt-4o-mini"


def test_bad_all_flag_is_400(api):
    response = api.get("/models?all=perhaps")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["all"]


def test_requires_a_client_token(db):
    assert APIClient().get("/models").status_code == 401
