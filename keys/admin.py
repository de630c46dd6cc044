"""Admin for secrets: provider API keys and client tokens.

Plaintext never reaches a page or the admin history. Provider keys are shown
masked and typed into a write-only field; client tokens exist in plaintext
only in the one message shown right after they are issued. The admin's
LogEntry records field labels and str(obj) (which is masked), never values.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from keys.models import ClientToken, ProviderAPIKey
from keys.services import api_key_set, validate_api_key
from providers.models import Provider


class ProviderAPIKeyForm(forms.ModelForm):
    # Not the model's `key` field: a ModelForm would write a blank submission
    # over the stored key, and would render the decrypted value back.
    new_key = forms.CharField(
        label="Key",
        required=False,
        strip=True,
        validators=[validate_api_key],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = ProviderAPIKey
        fields = ("provider", "label", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["new_key"]
        if self.instance.pk is None:
            field.required = True
            field.help_text = "Stored encrypted; it cannot be read back from the admin."
        else:
            field.help_text = (
                f"Currently {self.instance.masked}. Leave blank to keep it; "
                "type a new key to replace it."
            )

    def _get_validation_exclusions(self) -> set[str]:
        # Saving an active key deactivates the provider's current one (see
        # save_model), so the one-active-key constraint must not reject the
        # form first. Excluding is_active skips only that conditional check.
        return {*super()._get_validation_exclusions(), "is_active"}


@admin.register(ProviderAPIKey)
class ProviderAPIKeyAdmin(admin.ModelAdmin):
    form = ProviderAPIKeyForm
    list_display = (
        "provider",
        "masked",
        "label",
        "is_active",
        "created_at",
        "updated_at",
        "last_used_at",
    )
    list_select_related = ("provider",)
    list_filter = ("is_active", "provider")
    search_fields = ("provider__name", "label", "masked")
    readonly_fields = ("masked", "created_at", "updated_at", "last_used_at")
    actions = ("deactivate",)

    def get_fieldsets(self, request: HttpRequest, obj: ProviderAPIKey | None = None) -> Any:
        if obj is None:
            return ((None, {"fields": ("provider", "new_key", "label", "is_active")}),)
        return (
            (None, {"fields": ("provider", "masked", "new_key", "label", "is_active")}),
            ("Usage", {"fields": ("created_at", "updated_at", "last_used_at")}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderAPIKey | None = None) -> Any:
        # A key belongs to the provider that issued it; moving it makes no sense.
        if obj is not None:
            return (*self.readonly_fields, "provider")
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: ProviderAPIKey, form: forms.Form, change: bool
    ) -> None:
        new_key = form.cleaned_data.get("new_key", "")
        if not change and obj.is_active:
            # The usual case, shared with the REST API: the new key replaces
            # the provider's active one. Adopt the row the service created so
            # the admin logs and redirects to it.
            created = api_key_set(provider=obj.provider, key=new_key, label=obj.label)
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        update_fields: list[str] | None = None
        if new_key:
            obj.key = new_key
            obj.last_used_at = None  # "last used" described the old secret
        elif change:
            # Leave the stored ciphertext alone: re-saving would re-encrypt
            # whatever was decrypted, which under a wrong FIELD_ENCRYPTION_KEY
            # is the ciphertext itself.
            update_fields = ["label", "is_active", "updated_at"]
        with transaction.atomic():
            if obj.is_active:
                # Same lock as api_key_set, so a concurrent replacement queues
                # up instead of tripping the one-active-key constraint.
                Provider.objects.select_for_update().filter(pk=obj.provider_id).first()
                ProviderAPIKey.objects.filter(provider_id=obj.provider_id, is_active=True).exclude(
                    pk=obj.pk
                ).update(is_active=False)
            obj.save(update_fields=update_fields)

    @admin.action(description="Deactivate selected keys")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ProviderAPIKey]) -> None:
        # save() per row (not update()) so the config-revision signal fires
        # and every worker stops using the key.
        count = 0
        for api_key in queryset.filter(is_active=True):
            api_key.is_active = False
            api_key.save(update_fields=["is_active", "updated_at"])
            count += 1
        self.message_user(request, f"{count} key(s) deactivated.")


@admin.register(ClientToken)
class ClientTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "is_admin",
        "is_active",
        "priority",
        "created_at",
        "last_used_at",
    )
    list_filter = ("is_active", "is_admin", "priority")
    search_fields = ("name", "prefix")
    # token_hash is deliberately absent everywhere: it is useless to an
    # operator and there is no reason to hand it to anyone.
    fields = ("name", "prefix", "is_admin", "is_active", "priority", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ("deactivate",)

    def get_fields(self, request: HttpRequest, obj: ClientToken | None = None) -> Any:
        # Adding asks only what ClientToken.issue() needs (plus the routing
        # preference); the rest is generated.
        if obj is None:
            return ("name", "is_admin", "priority")
        return self.fields

    def save_model(
        self, request: HttpRequest, obj: ClientToken, form: forms.Form, change: bool
    ) -> None:
        if change:
            obj.save()
            return
        token, raw = ClientToken.issue(name=obj.name, is_admin=obj.is_admin)
        if obj.priority:
            token.priority = obj.priority
            token.save(update_fields=["priority"])
        # Adopt the issued row so the admin logs and redirects to it.
        obj.pk = token.pk
        obj.refresh_from_db()
        # The only time the plaintext exists outside the client: it is not
        # stored, so this message is the operator's one chance to copy it.
        messages.success(
            request,
            format_html(
                "Token for “{}”: <code>{}</code> — copy it now; it is not stored and "
                "will not be shown again.",
                token.name,
                raw,
            ),
        )

    @admin.action(description="Deactivate selected tokens")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ClientToken]) -> None:
        # save() per row (not update()) so the config-revision signal fires
        # and workers reject the token within seconds.
        count = 0
        for token in queryset.filter(is_active=True):
            token.is_active = False
            token.save(update_fields=["is_active"])
            count += 1
        self.message_user(request, f"{count} token(s) deactivated.")
