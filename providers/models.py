from __future__ import annotations

import os
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce, Now

from providers.adapters import ADAPTERS

KIND_CHOICES = [(kind, label) for kind, (label, _path) in ADAPTERS.items()]

# Capabilities a model entry may declare: the intents the classifier predicts
# plus request features the router checks for.
CAPABILITIES = (
    "basic",
    "chat",
    "simple_math",
    "file_creation",
    "code",
    "analysis",
    "summarization",
    "comparison",
    "complex_reasoning",
    "long_document",
    "legal",
    "detailed_reasoning",
    "vision",
    "tools",
)


class ProviderQuerySet(models.QuerySet):
    def mark_key_failing(self, message: str) -> int:
        """Record an upstream key rejection; the first one's time is kept."""
        return self.update(key_failing_since=Coalesce(F("key_failing_since"), Now()), key_error=message[:300])

    def clear_key_failure(self) -> int:
        return self.filter(key_failing_since__isnull=False).update(key_failing_since=None, key_error="")


class Provider(models.Model):
    """An upstream LLM service reached through one adapter kind."""

    name = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=30, choices=KIND_CHOICES)
    base_url = models.URLField(max_length=300)
    api_key_env = models.CharField(
        max_length=60,
        blank=True,
        help_text="Environment variable read when no key is stored for this provider.",
    )
    connect_timeout = models.FloatField(default=5.0, validators=[MinValueValidator(0.05)])
    read_timeout = models.FloatField(default=120.0, validators=[MinValueValidator(0.1)])
    enabled = models.BooleanField(default=True)
    # Set when the upstream rejected our key (401/403); cleared by the next
    # success through it, or when a new key is stored.
    key_failing_since = models.DateTimeField(null=True, blank=True)
    key_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProviderQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def env_api_key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""



class ModelEntryQuerySet(models.QuerySet):
    def usable(self) -> ModelEntryQuerySet:
        return self.filter(enabled=True, provider__enabled=True)


class ModelEntry(models.Model):
    """A routable model: the registry key clients name, and what it can do."""

    key = models.SlugField(max_length=60, unique=True, help_text="Name clients and rules use, e.g. 'openai'.")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    upstream_model = models.CharField(max_length=120, help_text="Model name sent to the provider.")
    capabilities = models.JSONField(default=list, blank=True)
    context_window = models.PositiveIntegerField(
        help_text="Context window in tokens (prompt + output).", validators=[MinValueValidator(256)]
    )
    max_output_tokens = models.PositiveIntegerField(default=4096, validators=[MinValueValidator(1)])
    input_price_per_mtok = models.DecimalField(
        "input price / 1M tokens (USD)", max_digits=10, decimal_places=4, default=Decimal(0)
    )
    output_price_per_mtok = models.DecimalField(
        "output price / 1M tokens (USD)", max_digits=10, decimal_places=4, default=Decimal(0)
    )
    tier = models.PositiveSmallIntegerField(
        default=1, help_text="Quality tier; higher wins when a client asks for quality."
    )
    fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text="Ordered model keys tried when this model fails, e.g. [\"anthropic\", \"local\"].",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelEntryQuerySet.as_manager()

    class Meta:
        ordering = ("key",)
        verbose_name = "model registry entry"
        verbose_name_plural = "model registry"

    def __str__(self) -> str:
        return f"{self.key} ({self.upstream_model})"

    def clean(self) -> None:
        unknown = sorted(set(self.capabilities or []) - set(CAPABILITIES))
        if not isinstance(self.capabilities, list) or unknown:
            raise ValidationError({"capabilities": f"Unknown capabilities: {', '.join(unknown)}"})
        if not isinstance(self.fallbacks, list) or not all(isinstance(k, str) for k in self.fallbacks):
            raise ValidationError({"fallbacks": "Must be a list of model keys."})
        if self.key in self.fallbacks:
            raise ValidationError({"fallbacks": "A model cannot fall back to itself."})
        missing = set(self.fallbacks) - set(ModelEntry.objects.filter(key__in=self.fallbacks).values_list("key", flat=True))
        if missing:
            raise ValidationError({"fallbacks": f"Unknown model keys: {', '.join(sorted(missing))}"})
        if self.max_output_tokens > self.context_window:
            raise ValidationError({"max_output_tokens": "Cannot exceed the context window."})

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (
            self.input_price_per_mtok * prompt_tokens + self.output_price_per_mtok * completion_tokens
        ) / Decimal(1_000_000)
