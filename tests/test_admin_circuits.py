"""Operators see each provider's circuit breaker in the admin."""

from __future__ import annotations

from routing.breaker import breaker


def test_provider_list_shows_an_open_circuit(client, staff_user, settings):
    client.force_login(staff_user)
    for _ in range(settings.NEUROROUTE.get("BREAKER_THRESHOLD", 5)):
        breaker.failure("openai")

    page = client.get("/admin/providers/provider/").content.decode()

    assert "circuit" in page
    assert "open</strong>" in page
    assert page.count("closed") >= 2  # lmstudio and anthropic


def test_provider_change_page_shows_the_circuit(client, staff_user):
    from providers.models import Provider

    client.force_login(staff_user)
    provider = Provider.objects.get(name="anthropic")

    page = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()

    assert "Circuit breaker" in page and "closed" in page
