"""Admin for providers and the model registry: the operator's main controls."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import slug_re
from django.db import models
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from keys.models import ProviderAPIKey
from providers.models import CAPABILITIES, ModelEntry, Provider


class KeyStatusFilter(admin.SimpleListFilter):
    title = "key status"
    parameter_name = "key"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("stored", "Stored key"), ("missing", "No stored key"), ("failing", "Failing")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # The changelist queryset is annotated with has_stored_key (see get_queryset).
        if self.value() == "stored":
            return queryset.filter(has_stored_key=True)
        if self.value() == "missing":
            return queryset.filter(has_stored_key=False)
        if self.value() == "failing":
            return queryset.filter(key_failing_since__isnull=False)
        return queryset


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "base_url", "enabled", "key_status", "circuit")
    list_editable = ("enabled",)
    list_filter = ("kind", "enabled", KeyStatusFilter)
    search_fields = ("name", "base_url", "api_key_env")
    readonly_fields = ("key_failing_since", "key_error", "circuit", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind", "base_url", "enabled")}),
        (
            "API key",
            {
                "fields": ("api_key_env", "key_failing_since", "key_error"),
                "description": "Keys are stored under Keys › Provider API keys; the "
                "environment variable is the fallback when none is stored.",
            },
        ),
        ("Timeouts (seconds)", {"fields": ("connect_timeout", "read_timeout")}),
        ("Circuit breaker", {"fields": ("circuit",)}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("clear_key_failure",)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            # Django 6's default; a scheme-less cloud URL should not become http://.
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # One look at the (possibly Redis-shared) breaker per page, not per row.
        from routing.breaker import breaker

        self._circuits = breaker.status()
        return super().changelist_view(request, extra_context)

    @admin.display(description="circuit")
    def circuit(self, obj: Provider) -> str:
        from routing.breaker import breaker

        circuits = getattr(self, "_circuits", None)
        state = (circuits if circuits is not None else breaker.status()).get(obj.name)
        if state is None or state["state"] == "closed":
            failures = state["consecutive_failures"] if state else 0
            return f"closed ({failures} recent failures)" if failures else "closed"
        if state["state"] == "open":
            return format_html(
                '<strong style="color:#ba2121">open</strong> · {} failures · retry in {} s',
                state["consecutive_failures"],
                state.get("retry_in_s", "?"),
            )
        return format_html('<strong style="color:#b58105">half-open</strong> · probing')

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        # One EXISTS per row instead of one query per row for the key column.
        active_key = ProviderAPIKey.objects.filter(provider=OuterRef("pk"), is_active=True)
        return super().get_queryset(request).annotate(has_stored_key=Exists(active_key))

    @admin.display(description="API key")
    def key_status(self, obj: Provider) -> str:
        if getattr(obj, "has_stored_key", False):
            source = "stored"
        elif obj.env_api_key():
            source = f"env ({obj.api_key_env})"
        else:
            source = "none"
        if obj.key_failing_since:
            return format_html(
                '{} · <strong style="color:#ba2121" title="{}">failing since {}</strong>',
                source,
                obj.key_error,
                obj.key_failing_since.strftime("%Y-%m-%d %H:%M"),
            )
        return source

    @admin.action(description="Clear the key-failure flag (after fixing the key)")
    def clear_key_failure(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        queryset.clear_key_failure()
        self.message_user(request, "Key failures cleared.")


class ModelKeyListField(forms.CharField):
    """An ordered list of model keys, typed as "anthropic, local"."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        invalid = [key for key in value if not slug_re.fullmatch(key)]
        if invalid:
            raise forms.ValidationError(f"Not model keys: {', '.join(invalid)}")
        duplicates = sorted({key for key in value if value.count(key) > 1})
        if duplicates:
            raise forms.ValidationError(f"Listed more than once: {', '.join(duplicates)}")


class ModelEntryForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        choices=[(c, c.replace("_", " ")) for c in CAPABILITIES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Intents and request features this model handles well.",
    )
    fallbacks = ModelKeyListField(
        required=False,
        help_text="Comma-separated model keys, tried in this order when this model fails.",
    )

    class Meta:
        model = ModelEntry
        fields = "__all__"

    def clean_capabilities(self) -> list[str]:
        # Stored in CAPABILITIES order so diffs and the change history stay stable.
        chosen = set(self.cleaned_data["capabilities"])
        return [c for c in CAPABILITIES if c in chosen]

    # Unknown fallback keys and self-references are rejected by ModelEntry.clean(),
    # which the form runs and reports against the fallbacks field.


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    form = ModelEntryForm
    list_display = (
        "key",
        "provider",
        "upstream_model",
        "context_window",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "tier",
        "enabled",
        "fallback_list",
    )
    list_editable = ("tier", "enabled")
    list_select_related = ("provider",)
    list_filter = ("enabled", "tier", "provider")
    search_fields = ("key", "upstream_model", "provider__name")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("key", "provider", "upstream_model", "enabled", "tier")}),
        ("Limits", {"fields": ("context_window", "max_output_tokens")}),
        ("Prices", {"fields": ("input_price_per_mtok", "output_price_per_mtok")}),
        ("Routing", {"fields": ("capabilities", "fallbacks")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="fallbacks")
    def fallback_list(self, obj: ModelEntry) -> str:
        return " → ".join(obj.fallbacks) or "—"
