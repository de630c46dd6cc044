"""Bearer client tokens, admin tokens and staff sessions on the REST API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from keys.models import ClientToken, hash_token


def _client(authorization: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def _token(raw: str) -> ClientToken:
    return ClientToken.objects.get(token_hash=hash_token(raw))


def test_valid_token_is_accepted(api):
    assert api.get("/models").status_code == 200


def test_missing_token_is_401_with_bearer_challenge(db):
    response = APIClient().get("/models")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["message"] == "Authentication credentials were not provided."


def test_unknown_token_is_401(db):
    response = _client("Bearer nr_not-a-real-token").get("/models")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked token."


def test_revoked_token_is_401(user_token):
    ClientToken.objects.filter(token_hash=hash_token(user_token)).update(is_active=False)

    response = _client(f"Bearer {user_token}").get("/models")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked token."


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer one two", "bearer  "])
def test_malformed_bearer_header_is_401(db, authorization):
    response = _client(authorization).get("/models")

    assert response.status_code == 401
    assert "Bearer <token>" in response.json()["error"]["message"]


def test_scheme_is_case_insensitive(user_token):
    assert _client(f"bearer {user_token}").get("/models").status_code == 200


def test_other_schemes_are_not_ours_and_end_as_401(db):
    response = _client("Basic dXNlcjpwYXNz").get("/models")

    assert response.status_code == 401


def test_user_token_cannot_manage_keys(api):
    assert api.get("/api-keys/").status_code == 403


def test_admin_token_can_manage_keys(admin_api):
    assert admin_api.get("/api-keys/").status_code == 200


def test_staff_session_is_a_client_and_an_admin(client, staff_user):
    client.force_login(staff_user)

    assert client.get("/models").status_code == 200
    assert client.get("/api-keys/").status_code == 200


def test_non_staff_session_is_forbidden(client, db):
    user = User.objects.create_user("visitor", password="correct horse battery")
    client.force_login(user)

    assert client.get("/models").status_code == 403
    assert client.get("/api-keys/").status_code == 403


def test_first_use_records_last_used_at(api, user_token):
    assert _token(user_token).last_used_at is None

    api.get("/models")

    assert _token(user_token).last_used_at is not None


def test_last_used_at_is_written_at_most_once_a_minute(api, user_token):
    api.get("/models")
    first = _token(user_token).last_used_at

    api.get("/models")

    assert _token(user_token).last_used_at == first


def test_last_used_at_moves_on_after_a_minute(api, user_token):
    long_ago = timezone.now() - timedelta(minutes=5)
    ClientToken.objects.filter(token_hash=hash_token(user_token)).update(last_used_at=long_ago)

    api.get("/models")

    assert _token(user_token).last_used_at > long_ago


def test_token_use_does_not_trigger_a_config_reload(api, user_token):
    from routing.models import ConfigRevision

    before = ConfigRevision.current()

    api.get("/models")

    assert ConfigRevision.current() == before
