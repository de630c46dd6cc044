"""Invalidate the in-memory gateway configuration when the admin changes it."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from keys.models import ClientToken, ProviderAPIKey
from providers.models import ModelEntry, Provider
from routing.models import ConfigRevision, RoutingRule

WATCHED = (Provider, ModelEntry, ProviderAPIKey, ClientToken, RoutingRule)


@receiver(post_save)
@receiver(post_delete)
def bump_revision(sender, **kwargs) -> None:
    # Bookkeeping (last_used_at) is written with update(), which sends no signal.
    if sender in WATCHED:
        ConfigRevision.bump()

