"""Input and output shapes for /api-keys/; keys are write-only."""

from __future__ import annotations

from rest_framework import serializers

from keys.resolution import ENVIRONMENT, NONE, STORED
from keys.services import MAX_KEY_LENGTH, validate_key_characters
from providers.models import Provider


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers instead of quietly turning them into strings."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _key_field() -> StrictCharField:
    # No trimming: a key with stray whitespace is rejected, not silently changed.
    # Emptiness and length are the field's own checks, so each error is reported once.
    return StrictCharField(
        max_length=MAX_KEY_LENGTH,
        trim_whitespace=False,
        validators=[validate_key_characters],
        write_only=True,
    )


def _label_field() -> StrictCharField:
    return StrictCharField(max_length=100, required=False, allow_blank=True, default="")


class ApiKeyCreateInput(serializers.Serializer):
    provider = StrictCharField(help_text="Provider name, e.g. 'openai'.")
    key = _key_field()
    label = _label_field()

    def validate_provider(self, value: str) -> Provider:
        provider = Provider.objects.filter(name=value).first()
        if provider is None:
            known = ", ".join(Provider.objects.values_list("name", flat=True))
            raise serializers.ValidationError(f"Unknown provider {value!r}. Known providers: {known}.")
        return provider


class ApiKeyReplaceInput(serializers.Serializer):
    key = _key_field()
    label = _label_field()


class ApiKeyOutput(serializers.Serializer):
    """One provider's key status (a keys.resolution.KeyStatus); never the key itself."""

    provider = serializers.CharField(source="provider.name")
    kind = serializers.CharField(source="provider.kind")
    has_key = serializers.BooleanField(help_text="Whether a key is stored in NeuroRoute.")
    source = serializers.ChoiceField(
        choices=[STORED, ENVIRONMENT, NONE],
        help_text="Where requests get the key: stored here, the provider's environment variable, or nowhere.",
    )
    masked = serializers.CharField(help_text="Enough of the key to recognise it, e.g. 'sk-…abcd'.")
    label = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)

