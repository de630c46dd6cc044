"""Shared fixtures: named clients and tokens, and the fake upstream at the network edge."""

from __future__ import annotations

import os

os.environ.setdefault("NEUROROUTE_ENV", "test")
os.environ.setdefault("NEUROROUTE_LOG_TO_FILE", "0")

import pytest


@pytest.fixture(scope="session")
def fake_upstream():
    """One fake OpenAI/Anthropic server for the whole run, on a free port."""
    from providers.fake_upstream import FakeUpstream

    server = FakeUpstream()
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _point_providers_at_fake(fake_upstream, settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "FAKE_UPSTREAM_URL": fake_upstream.url}
    yield


@pytest.fixture
def user_token(db):
    from keys.models import ClientToken

    _token, raw = ClientToken.issue(name="alice-app")
    return raw


@pytest.fixture
def admin_token(db):
    from keys.models import ClientToken

    _token, raw = ClientToken.issue(name="ops", is_admin=True)
    return raw


@pytest.fixture
def api(user_token):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    return client


@pytest.fixture
def admin_api(admin_token):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return client


@pytest.fixture
def staff_user(db):
    from django.contrib.auth.models import User

    return User.objects.create_user("operator", "ops@example.com", "correct horse battery", is_staff=True, is_superuser=True)

