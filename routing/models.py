from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F

from keys.models import ClientToken
from providers.models import ModelEntry


class ConfigRevision(models.Model):
    """A counter bumped whenever routing configuration changes.

    Web workers keep providers, models, rules, tokens and the classifier in
    memory and poll this one row to know when to reload, so an admin edit
    reaches every worker on every machine within a few seconds.
    """

    value = models.PositiveBigIntegerField(default=0)

    @classmethod
    def bump(cls) -> None:
        with transaction.atomic():
            updated = cls.objects.filter(pk=1).update(value=F("value") + 1)
            if not updated:
                cls.objects.get_or_create(pk=1, defaults={"value": 1})
        # This process saw the change: it need not wait for its next poll.
        from routing.gateway_config import config_store

        config_store.invalidate()

    @classmethod
    def current(cls) -> int:
        return cls.objects.filter(pk=1).values_list("value", flat=True).first() or 0


class RoutingRuleQuerySet(models.QuerySet):
    def enabled(self) -> RoutingRuleQuerySet:
        return self.filter(enabled=True, target__enabled=True).select_related("target")


class RoutingRule(models.Model):
    """An operator rule: when a prompt matches, send it to the target model."""

    name = models.CharField(max_length=100, unique=True)
    phrases = models.JSONField(
        default=list,
        blank=True,
        help_text='Phrases matched case-insensitively on word boundaries, e.g. ["basic math", "hello"].',
    )
    pattern = models.CharField(
        max_length=500, blank=True, help_text="Optional regular expression (case-insensitive)."
    )
    target = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="rules")
    priority = models.IntegerField(default=100, help_text="Higher priority rules are tried first.")
    enabled = models.BooleanField(default=True)
    hint_only = models.BooleanField(
        default=False,
        help_text="A hint nudges the classifier towards the target instead of deciding outright.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RoutingRuleQuerySet.as_manager()

    class Meta:
        ordering = ("-priority", "name")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.phrases, list) or not all(
            isinstance(p, str) and p.strip() for p in self.phrases
        ):
            raise ValidationError({"phrases": "Must be a list of non-empty strings."})
        if not self.phrases and not self.pattern:
            raise ValidationError("Give at least one phrase or a pattern.")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValidationError({"pattern": f"Invalid regular expression: {exc}"}) from None


class RoutingExample(models.Model):
    """A labelled prompt the intent classifier learns from."""

    text = models.TextField()
    intent = models.CharField(
        max_length=40, db_index=True, help_text="An intent name, or a model key to route to directly."
    )
    source = models.CharField(max_length=60, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("intent", "id")

    def __str__(self) -> str:
        return f"{self.intent}: {self.text[:60]}"


class ClassifierVersion(models.Model):
    """A trained intent classifier; exactly one is active at a time."""

    class Status(models.TextChoices):
        TRAINING = "training"
        READY = "ready"
        FAILED = "failed"

    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    is_active = models.BooleanField(default=False)
    examples_count = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=list, blank=True)
    cv_accuracy = models.FloatField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    artefact = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_classifier"),
        )

    def __str__(self) -> str:
        return f"v{self.pk} ({self.status}{', active' if self.is_active else ''})"

    def activate(self) -> None:
        with transaction.atomic():
            ClassifierVersion.objects.filter(is_active=True).exclude(pk=self.pk).update(is_active=False)
            ClassifierVersion.objects.filter(pk=self.pk).update(is_active=True)
            self.is_active = True
            ConfigRevision.bump()


class RequestLogQuerySet(models.QuerySet):
    def failures(self) -> RequestLogQuerySet:
        return self.exclude(status=RequestLog.Status.OK)


class RequestLog(models.Model):
    """One row per gateway request, written whatever the outcome."""

    class Status(models.TextChoices):
        OK = "ok"
        CLIENT_ERROR = "client_error"
        UPSTREAM_ERROR = "upstream_error"
        CANCELLED = "cancelled"
        ERROR = "error"

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=40)
    client = models.ForeignKey(ClientToken, null=True, blank=True, on_delete=models.SET_NULL)
    user_id = models.CharField(max_length=200, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    prompt = models.TextField(blank=True)
    response = models.TextField(blank=True)
    model_key = models.CharField(max_length=60, blank=True, db_index=True)
    upstream_model = models.CharField(max_length=120, blank=True)
    provider = models.CharField(max_length=50, blank=True)
    route_reason = models.CharField(max_length=300, blank=True)
    route_rule = models.CharField(max_length=100, blank=True)
    decision = models.JSONField(default=dict, blank=True)
    attempts = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    http_status = models.PositiveSmallIntegerField(default=200)
    error = models.TextField(blank=True)
    stream = models.BooleanField(default=False)
    cache_hit = models.BooleanField(default=False)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)

    objects = RequestLogQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = (models.Index(fields=["model_key", "-created_at"], name="log_model_recent"),)

    def __str__(self) -> str:
        return f"{self.request_id} {self.endpoint} {self.status}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
