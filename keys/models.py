from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.db.models import Q
from encrypted_model_fields.fields import EncryptedCharField

from providers.models import Provider

TOKEN_PREFIX = "nr_"


def mask_secret(value: str) -> str:
    """Show enough of a secret to recognise it, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "…" + value[-2:]
    head = value[:3]
    return f"{head}…{value[-4:]}"


class ProviderAPIKey(models.Model):
    """An upstream API key, encrypted at rest; at most one active per provider."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="api_keys")
    key = EncryptedCharField(max_length=500)
    # Stored beside the ciphertext so lists and logs never need to decrypt.
    masked = models.CharField(max_length=20, editable=False)
    label = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("provider__name", "-created_at")
        verbose_name = "provider API key"
        constraints = (
            models.UniqueConstraint(
                fields=["provider"], condition=Q(is_active=True), name="one_active_key_per_provider"
            ),
        )

    def __str__(self) -> str:
        return f"{self.provider.name} {self.masked}"

    def save(self, *args, **kwargs) -> None:
        self.masked = mask_secret(self.key)
        super().save(*args, **kwargs)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ClientTokenQuerySet(models.QuerySet):
    def active(self) -> ClientTokenQuerySet:
        return self.filter(is_active=True)


class ClientToken(models.Model):
    """A bearer token a REST client authenticates with; only its hash is kept."""

    class Priority(models.TextChoices):
        BALANCED = "", "balanced"
        COST = "cost", "cost"
        SPEED = "speed", "speed"
        QUALITY = "quality", "quality"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise the token.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_admin = models.BooleanField(default=False, help_text="May manage provider keys through /api-keys/.")
    is_active = models.BooleanField(default=True)
    priority = models.CharField(
        max_length=10, choices=Priority.choices, blank=True, default="",
        help_text="Routing preference used when a request does not say.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ClientTokenQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, name: str, is_admin: bool = False) -> tuple[ClientToken, str]:
        """Create a token; the plaintext is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            name=name, is_admin=is_admin, prefix=raw[:10], token_hash=hash_token(raw)
        )
        return token, raw
