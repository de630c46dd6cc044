"""Where each provider's upstream API key comes from: a stored key, else the environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import InvalidToken
from django.db.models import Prefetch, QuerySet, TextField
from django.db.models.functions import Cast
from encrypted_model_fields.fields import decrypt_str

from keys.models import ProviderAPIKey, mask_secret
from providers.models import Provider

STORED = "stored"
ENVIRONMENT = "environment"
NONE = "none"
UNDECRYPTABLE = "stored key cannot be decrypted (check FIELD_ENCRYPTION_KEY)"


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """The key to send upstream; `value` is empty whenever `error` is set."""

    value: str
    source: str
    error: str = ""


def resolve_api_key(provider: Provider) -> ResolvedKey:
    """Decrypt the provider's active stored key, else read its environment variable.

    The encrypted field swallows `InvalidToken` and hands back the ciphertext
    when FIELD_ENCRYPTION_KEY is wrong, so reading `ProviderAPIKey.key` would
    send ciphertext upstream as if it were a key. We read the raw column
    (cast to plain text, which bypasses the field's converter) and decrypt
    it ourselves, so a wrong encryption key becomes an explicit error.
    """
    ciphertext = (
        ProviderAPIKey.objects.filter(provider=provider, is_active=True)
        .annotate(ciphertext=Cast("key", output_field=TextField()))
        .values_list("ciphertext", flat=True)
        .first()
    )
    if ciphertext is not None:
        try:
            return ResolvedKey(decrypt_str(ciphertext), STORED)
        except InvalidToken:
            return ResolvedKey("", STORED, UNDECRYPTABLE)
    env_value = provider.env_api_key()
    if env_value:
        return ResolvedKey(env_value, ENVIRONMENT)
    # Not an error in itself: local servers such as LM Studio need no key.
    return ResolvedKey("", NONE)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What an operator may see about a provider's key, without decrypting anything."""

    provider: Provider
    stored: ProviderAPIKey | None

    @property
    def has_key(self) -> bool:
        return self.stored is not None

    @property
    def source(self) -> str:
        if self.stored is not None:
            return STORED
        return ENVIRONMENT if self.provider.env_api_key() else NONE

    @property
    def masked(self) -> str:
        if self.stored is not None:
            return self.stored.masked
        return mask_secret(self.provider.env_api_key())

    @property
    def label(self) -> str:
        return self.stored.label if self.stored else ""

    @property
    def created_at(self) -> datetime | None:
        return self.stored.created_at if self.stored else None

    @property
    def updated_at(self) -> datetime | None:
        return self.stored.updated_at if self.stored else None

    @property
    def last_used_at(self) -> datetime | None:
        return self.stored.last_used_at if self.stored else None


def key_statuses(providers: QuerySet[Provider] | None = None) -> list[KeyStatus]:
    """One status per provider (all of them unless a queryset is given), in two queries."""
    providers = Provider.objects.all() if providers is None else providers
    active_keys = Prefetch(
        "api_keys", queryset=ProviderAPIKey.objects.filter(is_active=True), to_attr="active_keys"
    )
    return [
        KeyStatus(provider, provider.active_keys[0] if provider.active_keys else None)
        for provider in providers.prefetch_related(active_keys)
    ]
