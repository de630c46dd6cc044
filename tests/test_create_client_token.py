"""`manage.py create_client_token`: issue a token an operator can hand to a client."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from keys.models import ClientToken


def _create(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("create_client_token", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue().strip(), stderr.getvalue()


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_prints_a_token_that_authenticates(db):
    raw, hint = _create("billing-app")

    assert raw.startswith("nr_")
    assert "Authorization: Bearer" in hint
    assert raw not in hint  # shown exactly once
    assert _client(raw).get("/models").status_code == 200
    assert _client(raw).get("/api-keys/").status_code == 403


def test_admin_flag_issues_an_admin_token(db):
    raw, _hint = _create("ops", "--admin")

    assert ClientToken.objects.get(name="ops").is_admin
    assert _client(raw).get("/api-keys/").status_code == 200


def test_only_the_hash_is_stored(db):
    raw, _hint = _create("billing-app")

    token = ClientToken.objects.get(name="billing-app")
    assert token.token_hash != raw
    assert raw not in token.token_hash
    assert token.prefix == raw[:10]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_rejects_unusable_names(db, name):
    with pytest.raises(CommandError):
        _create(name)
    assert not ClientToken.objects.exists()
