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
    if sender in WATCHED:
        if kwargs.get("update_fields") == frozenset({"last_used_at"}):
            return  # bookkeeping, not configuration
        ConfigRevision.bump()

