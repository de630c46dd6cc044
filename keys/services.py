"""Workflows on provider API keys, shared by the REST API and the admin."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from keys.models import ProviderAPIKey
from providers.models import Provider

MAX_KEY_LENGTH = 500


def validate_key_characters(value: str) -> None:
    """Keys travel in HTTP headers, so anything beyond printable ASCII (spaces,
    newlines from a sloppy paste, zero-width characters) would either break
    the request or fail authentication in a way that is hard to diagnose."""
    if not all("!" <= char <= "~" for char in value):
        raise ValidationError(
            "The key must be printable ASCII without whitespace or control characters."
        )


def validate_api_key(value: str) -> None:
    """Reject values that cannot be a working key."""
    if not isinstance(value, str) or not value:
        raise ValidationError("The key must be a non-empty string.")
    if len(value) > MAX_KEY_LENGTH:
        raise ValidationError(f"The key must be at most {MAX_KEY_LENGTH} characters.")
    validate_key_characters(value)


def api_key_set(*, provider: Provider, key: str, label: str = "") -> ProviderAPIKey:
    """Store `key` as the provider's one active key, deactivating the previous one."""
    validate_api_key(key)
    with transaction.atomic():
        # Lock the provider row so two concurrent replacements queue up instead
        # of one of them failing on the one-active-key constraint.
        Provider.objects.select_for_update().filter(pk=provider.pk).first()
        ProviderAPIKey.objects.filter(provider=provider, is_active=True).update(is_active=False)
        Provider.objects.filter(pk=provider.pk).clear_key_failure()  # a new key deserves a fresh start
        return ProviderAPIKey.objects.create(provider=provider, key=key, label=label)


def api_key_delete(*, provider: Provider) -> int:
    """Delete every key stored for the provider; returns how many were removed.

    Deactivated predecessors go too: they are old secrets nobody can use
    through the API any more, and keeping their ciphertext has no upside.
    """
    deleted, _ = ProviderAPIKey.objects.filter(provider=provider).delete()
    return deleted
