"""/health: database, cache and provider keys, without revealing any secret."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.utils import timezone
from encrypted_model_fields import fields as encrypted_fields
from rest_framework.test import APIClient

from keys.models import ProviderAPIKey
from keys.resolution import UNDECRYPTABLE, resolve_api_key
from keys.services import api_key_set
from providers.models import Provider

SECRET = "sk-health-0123456789abcdef"


@contextmanager
def field_encryption_key(key: str) -> Iterator[None]:
    """Encrypt and decrypt under another FIELD_ENCRYPTION_KEY.

    encrypted_model_fields builds its MultiFernet once, at import, into the
    module global CRYPTER, so overriding the setting alone changes nothing:
    the global has to be rebuilt, and restored afterwards.
    """
    original = encrypted_fields.CRYPTER
    with override_settings(FIELD_ENCRYPTION_KEY=key):
        encrypted_fields.CRYPTER = encrypted_fields.get_crypter()
        try:
            yield
        finally:
            encrypted_fields.CRYPTER = original


@pytest.fixture
def openai(db) -> Provider:
    return Provider.objects.get(name="openai")


@pytest.fixture
def key_from_another_deployment(openai) -> ProviderAPIKey:
    """A stored key encrypted under a FIELD_ENCRYPTION_KEY this process does not have."""
    with field_encryption_key(Fernet.generate_key().decode()):
        return api_key_set(provider=openai, key=SECRET)


def test_healthy_when_database_cache_and_keys_are_fine(db, openai):
    api_key_set(provider=openai, key=SECRET)

    response = APIClient().get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["fake_upstream"] is True
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["cache"]["ok"] is True
    keys = body["checks"]["provider_keys"]
    assert keys["ok"] is True
    assert keys["providers"]["openai"] == {"source": "stored", "ok": True}
    assert set(keys["providers"]) == {"lmstudio", "openai", "anthropic"}
    assert SECRET.encode() not in response.content


def test_health_needs_no_token_and_ignores_a_bad_one(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nr_stale")

    assert client.get("/health").status_code == 200


def test_environment_keys_are_reported_by_source_only(db, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-environment-secret")

    response = APIClient().get("/health")

    assert response.json()["checks"]["provider_keys"]["providers"]["anthropic"]["source"] == "environment"
    assert b"sk-ant-environment-secret" not in response.content


def test_unhealthy_when_a_stored_key_was_encrypted_under_another_key(key_from_another_deployment):
    response = APIClient().get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["provider_keys"]["ok"] is False
    assert body["checks"]["provider_keys"]["providers"]["openai"] == {
        "source": "stored",
        "ok": False,
        "error": "stored key cannot be decrypted (check FIELD_ENCRYPTION_KEY)",
    }
    assert SECRET.encode() not in response.content


def test_undecryptable_key_resolves_to_an_error_never_to_the_ciphertext(key_from_another_deployment, openai):
    # The field itself hides the failure and hands back the ciphertext ...
    ciphertext = ProviderAPIKey.objects.get(pk=key_from_another_deployment.pk).key
    assert ciphertext.startswith("gAAAA")

    resolved = resolve_api_key(openai)

    # ... which must never be mistaken for a key.
    assert resolved.value == ""
    assert resolved.source == "stored"
    assert resolved.error == UNDECRYPTABLE


def test_stored_key_wins_over_the_environment(openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    api_key_set(provider=openai, key=SECRET)

    assert resolve_api_key(openai).value == SECRET
    assert resolve_api_key(openai).source == "stored"


def test_key_rotation_still_decrypts_keys_under_the_old_key(openai):
    old_key = Fernet.generate_key().decode()
    with field_encryption_key(old_key):
        api_key_set(provider=openai, key=SECRET)

    with field_encryption_key([Fernet.generate_key().decode(), old_key]):
        assert resolve_api_key(openai).value == SECRET
        assert APIClient().get("/health").status_code == 200


def test_degraded_while_an_upstream_rejects_its_key(openai):
    Provider.objects.filter(pk=openai.pk).mark_key_failing("upstream returned 401: invalid api key")

    response = APIClient().get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    entry = body["checks"]["provider_keys"]["providers"]["openai"]
    assert entry["ok"] is False
    assert entry["key_failing_since"].startswith(str(timezone.now().year))
    assert "error" not in entry


def test_degraded_when_the_cache_loses_what_it_is_given(db, settings):
    # A dead Redis (errors ignored) behaves like the dummy cache: set is lost, get is None.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    response = APIClient().get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"]["ok"] is False


def test_unhealthy_when_the_database_is_down(db, monkeypatch):
    from django.db import OperationalError
    from django.db.backends.base.base import BaseDatabaseWrapper

    def refuse(self, *args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(BaseDatabaseWrapper, "cursor", refuse)
        response = APIClient().get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["provider_keys"] == {"ok": False, "providers": {}, "error": "database unavailable"}
