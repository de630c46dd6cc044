"""/api-keys/: operators store, replace and delete upstream keys; plaintext never comes back."""

from __future__ import annotations

import pytest
from django.db import connection

from keys.models import ProviderAPIKey
from keys.services import api_key_set
from providers.models import Provider

SECRET = "sk-test-0123456789abcdefWXYZ"
OTHER_SECRET = "sk-test-9876543210zyxwvuABCD"


@pytest.fixture
def openai(db) -> Provider:
    return Provider.objects.get(name="openai")


@pytest.fixture
def stored_key(openai) -> ProviderAPIKey:
    return api_key_set(provider=openai, key=SECRET, label="prod")


def _by_provider(response) -> dict[str, dict]:
    return {row["provider"]: row for row in response.json()}


def _raw_key_column(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM keys_providerapikey WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_list_shows_every_provider_and_where_its_key_comes_from(admin_api, stored_key, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-environment-1234")
    monkeypatch.delenv("LMSTUDIO_API_KEY", raising=False)

    response = admin_api.get("/api-keys/")

    assert response.status_code == 200
    rows = _by_provider(response)
    assert set(rows) == {"lmstudio", "openai", "anthropic"}
    assert rows["openai"] == {
        "provider": "openai",
        "kind": "openai",
        "has_key": True,
        "source": "stored",
        "masked": "sk-…WXYZ",
        "label": "prod",
        "created_at": rows["openai"]["created_at"],
        "updated_at": rows["openai"]["updated_at"],
        "last_used_at": None,
    }
    assert rows["openai"]["created_at"] is not None
    assert rows["anthropic"]["source"] == "environment"
    assert rows["anthropic"]["has_key"] is False
    assert rows["anthropic"]["masked"] == "sk-…1234"
    assert rows["lmstudio"]["source"] == "none"
    assert rows["lmstudio"]["masked"] == ""
    assert SECRET.encode() not in response.content
    assert b"sk-ant-from-environment-1234" not in response.content


def test_post_stores_key_and_answers_with_the_mask_only(admin_api, openai):
    response = admin_api.post("/api-keys/", {"provider": "openai", "key": SECRET, "label": "prod"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["provider"] == "openai"
    assert body["has_key"] is True
    assert body["source"] == "stored"
    assert body["masked"] == "sk-…WXYZ"
    assert "key" not in body
    assert SECRET.encode() not in response.content
    assert ProviderAPIKey.objects.get(provider=openai, is_active=True).key == SECRET


def test_stored_key_is_encrypted_in_the_database(admin_api, openai):
    admin_api.post("/api-keys/", {"provider": "openai", "key": SECRET}, format="json")
    stored = ProviderAPIKey.objects.get(provider=openai, is_active=True)

    raw = _raw_key_column(stored.pk)

    assert raw != SECRET
    assert SECRET not in raw


def test_post_again_replaces_the_key_leaving_one_active(admin_api, stored_key, openai):
    response = admin_api.post("/api-keys/", {"provider": "openai", "key": OTHER_SECRET}, format="json")

    assert response.status_code == 201
    assert response.json()["masked"] == "sk-…ABCD"
    active = ProviderAPIKey.objects.filter(provider=openai, is_active=True)
    assert [key.key for key in active] == [OTHER_SECRET]
    assert response.json()["label"] == ""


def test_get_one_provider(admin_api, stored_key):
    response = admin_api.get("/api-keys/openai")

    assert response.status_code == 200
    assert response.json()["masked"] == "sk-…WXYZ"
    assert response.json()["label"] == "prod"
    assert SECRET.encode() not in response.content


def test_put_replaces_the_key(admin_api, stored_key, openai):
    response = admin_api.put("/api-keys/openai", {"key": OTHER_SECRET, "label": "rotated"}, format="json")

    assert response.status_code == 200
    assert response.json()["masked"] == "sk-…ABCD"
    assert response.json()["label"] == "rotated"
    assert OTHER_SECRET.encode() not in response.content
    assert ProviderAPIKey.objects.filter(provider=openai, is_active=True).count() == 1
    assert ProviderAPIKey.objects.get(provider=openai, is_active=True).key == OTHER_SECRET


def test_put_without_a_previous_key_creates_one(admin_api, openai):
    response = admin_api.put("/api-keys/openai", {"key": SECRET}, format="json")

    assert response.status_code == 201
    assert response.json()["has_key"] is True


def test_delete_removes_the_key_and_falls_back_to_the_environment(admin_api, stored_key, openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-5678")

    response = admin_api.delete("/api-keys/openai")

    assert response.status_code == 204
    assert not ProviderAPIKey.objects.filter(provider=openai).exists()
    after = admin_api.get("/api-keys/openai").json()
    assert after["source"] == "environment"
    assert after["has_key"] is False


def test_delete_without_a_stored_key_is_404(admin_api, openai):
    response = admin_api.delete("/api-keys/openai")

    assert response.status_code == 404
    assert "No key is stored" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("put", {"key": SECRET}), ("delete", None)],
)
def test_unknown_provider_in_the_path_is_404(admin_api, method, body):
    response = getattr(admin_api, method)("/api-keys/nosuch", body, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No provider named 'nosuch'."


def test_unknown_provider_in_the_body_is_400_naming_the_field(admin_api, db):
    response = admin_api.post("/api-keys/", {"provider": "nosuch", "key": SECRET}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Invalid input"
    assert "Unknown provider 'nosuch'" in error["fields"]["provider"][0]
    assert "openai" in error["fields"]["provider"][0]
    assert not ProviderAPIKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "openai"}, "key"),
        ({"key": SECRET}, "provider"),
        ({"provider": "openai", "key": ""}, "key"),
        ({"provider": "openai", "key": None}, "key"),
        ({"provider": "openai", "key": 12345678}, "key"),
        ({"provider": "openai", "key": ["sk-a"]}, "key"),
        ({"provider": 7, "key": SECRET}, "provider"),
        ({"provider": "openai", "key": "sk-has space"}, "key"),
        ({"provider": "openai", "key": "sk-newline\n"}, "key"),
        ({"provider": "openai", "key": "sk-zero\u200bwidth"}, "key"),
        ({"provider": "openai", "key": "sk-" + "a" * 498}, "key"),
        ({"provider": "openai", "key": SECRET, "label": 5}, "label"),
    ],
)
def test_invalid_bodies_are_400_with_a_field_message(admin_api, db, body, field):
    response = admin_api.post("/api-keys/", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Invalid input"
    assert error["fields"][field]
    assert not ProviderAPIKey.objects.exists()


def test_key_at_the_length_limit_is_accepted(admin_api, db):
    response = admin_api.post("/api-keys/", {"provider": "openai", "key": "k" * 500}, format="json")

    assert response.status_code == 201


def test_malformed_json_is_400_json(admin_api, db):
    response = admin_api.generic("POST", "/api-keys/", '{"provider": "openai", "key": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("JSON parse error")


def test_a_json_array_body_is_400(admin_api, db):
    response = admin_api.post("/api-keys/", ["openai", SECRET], format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]


def test_form_encoded_body_is_415(admin_api, db):
    response = admin_api.post("/api-keys/", {"provider": "openai", "key": SECRET})

    assert response.status_code == 415
    assert "error" in response.json()


def test_put_with_bad_body_keeps_the_old_key(admin_api, stored_key, openai):
    response = admin_api.put("/api-keys/openai", {"key": "two words"}, format="json")

    assert response.status_code == 400
    assert "printable ASCII" in response.json()["error"]["fields"]["key"][0]
    assert ProviderAPIKey.objects.get(provider=openai, is_active=True).key == SECRET


def test_plaintext_never_appears_in_any_response(admin_api, openai):
    responses = [
        admin_api.post("/api-keys/", {"provider": "openai", "key": SECRET}, format="json"),
        admin_api.get("/api-keys/"),
        admin_api.get("/api-keys/openai"),
        admin_api.put("/api-keys/openai", {"key": OTHER_SECRET}, format="json"),
        admin_api.get("/api-keys/"),
        admin_api.delete("/api-keys/openai"),
    ]

    for response in responses:
        assert SECRET.encode() not in response.content
        assert OTHER_SECRET.encode() not in response.content


def test_user_token_is_forbidden(api, stored_key):
    for response in (
        api.get("/api-keys/"),
        api.get("/api-keys/openai"),
        api.post("/api-keys/", {"provider": "openai", "key": OTHER_SECRET}, format="json"),
        api.delete("/api-keys/openai"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This endpoint needs an admin client token."
    assert ProviderAPIKey.objects.get(is_active=True).key == SECRET


def test_anonymous_request_is_401(client, db):
    response = client.get("/api-keys/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_staff_session_may_manage_keys(client, staff_user):
    client.force_login(staff_user)

    response = client.post("/api-keys/", {"provider": "openai", "key": SECRET}, content_type="application/json")

    assert response.status_code == 201
    assert client.get("/api-keys/openai").json()["has_key"] is True
