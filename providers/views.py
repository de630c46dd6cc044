"""/models (the registry clients may name) and /health (for load balancers and operators)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import build_object_type
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keys.permissions import IsClient
from keys.resolution import resolve_api_key
from providers.models import ModelEntry, Provider
from routing.breaker import breaker


class ModelsQuery(serializers.Serializer):
    all = serializers.BooleanField(default=False, help_text="Include disabled models.")


class ModelOutput(serializers.Serializer):
    name = serializers.CharField(source="upstream_model", help_text="Model name sent upstream.")
    provider = serializers.CharField(source="provider.name")
    provider_kind = serializers.CharField(source="provider.kind")
    capabilities = serializers.ListField(child=serializers.CharField())
    max_tokens = serializers.IntegerField(source="context_window", help_text="Context window in tokens.")
    max_output_tokens = serializers.IntegerField()
    input_price_per_mtok = serializers.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    output_price_per_mtok = serializers.DecimalField(max_digits=10, decimal_places=4, coerce_to_string=False)
    tier = serializers.IntegerField()
    fallbacks = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()


class ModelRegistryOutput(serializers.Serializer):
    """Entries keyed by model key, so clients look a model up by the name they send."""

    def to_representation(self, entries: Iterable[ModelEntry]) -> dict:
        return {entry.key: ModelOutput(entry).data for entry in entries}


class ModelRegistrySchema(OpenApiSerializerExtension):
    # drf-spectacular cannot infer a mapping keyed by data, so say it here.
    target_class = ModelRegistryOutput

    def map_serializer(self, auto_schema, direction) -> dict:
        entry = auto_schema.resolve_serializer(ModelOutput, direction)
        return build_object_type(additionalProperties=entry.ref)


class ModelsApi(APIView):
    permission_classes = (IsClient,)

    @extend_schema(
        tags=["models"],
        parameters=[ModelsQuery],
        responses=ModelRegistryOutput,
        summary="The model registry, keyed by the names clients and rules use",
    )
    def get(self, request: Request) -> Response:
        query = ModelsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        entries = ModelEntry.objects.select_related("provider")
        if not query.validated_data["all"]:
            # A model whose provider is disabled is not routable either.
            entries = entries.usable()
        return Response(ModelRegistryOutput(entries).data)


class CheckOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField()


class ProviderKeyOutput(serializers.Serializer):
    source = serializers.ChoiceField(choices=["stored", "environment", "none"])
    ok = serializers.BooleanField()
    error = serializers.CharField(required=False, help_text="Present when the stored key cannot be decrypted.")
    key_failing_since = serializers.DateTimeField(
        required=False, help_text="Present while the upstream rejects the key (401/403)."
    )


class ProviderKeysOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    providers = serializers.DictField(child=ProviderKeyOutput())
    error = serializers.CharField(required=False)


class ChecksOutput(serializers.Serializer):
    database = CheckOutput()
    cache = CheckOutput()
    provider_keys = ProviderKeysOutput()


class HealthOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "unhealthy"])
    checks = ChecksOutput()
    fake_upstream = serializers.BooleanField(help_text="Every provider is served by the bundled fake upstream.")
    circuits = serializers.DictField(help_text="Circuit-breaker state per provider (closed, open, half_open).")


def _timed(check: Callable[[], bool]) -> dict:
    started = time.perf_counter()
    ok = check()
    return {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def _cache_ok() -> bool:
    # django-redis is configured to swallow connection errors, so a dead
    # Redis shows up as a value that does not come back, not as an exception.
    probe = secrets.token_hex(8)
    cache.set("health:probe", probe, timeout=10)
    return cache.get("health:probe") == probe


def _provider_keys() -> tuple[dict, bool]:
    """The key check, and whether any stored key is undecryptable."""
    providers = {}
    undecryptable = False
    for provider in Provider.objects.all():
        resolved = resolve_api_key(provider)
        entry: dict = {"source": resolved.source, "ok": not resolved.error and provider.key_failing_since is None}
        if resolved.error:
            entry["error"] = resolved.error
            undecryptable = True
        if provider.key_failing_since:
            entry["key_failing_since"] = provider.key_failing_since.isoformat()
        providers[provider.name] = entry
    return {"ok": all(entry["ok"] for entry in providers.values()), "providers": providers}, undecryptable


class HealthApi(APIView):
    """Never reveals secrets: key sources and states only.

    Unhealthy (503) means no request can be served as configured: the
    database is down, or stored keys cannot be decrypted (a wrong
    FIELD_ENCRYPTION_KEY). Degraded (200) means some requests may fail:
    the cache is down, or an upstream rejects its key.
    """

    # A stale token in a probe's configuration must not turn health into a 401.
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        tags=["health"],
        responses={200: HealthOutput, 503: HealthOutput},
        summary="Database, cache and provider-key health",
    )
    def get(self, request: Request) -> Response:
        database = _timed(_database_ok)
        checks = {"database": database, "cache": _timed(_cache_ok)}
        undecryptable = False
        if database["ok"]:
            checks["provider_keys"], undecryptable = _provider_keys()
        else:
            checks["provider_keys"] = {"ok": False, "providers": {}, "error": "database unavailable"}
        if not database["ok"] or undecryptable:
            health = "unhealthy"
        elif all(check["ok"] for check in checks.values()):
            health = "ok"
        else:
            health = "degraded"
        body = {
            "status": health,
            "checks": checks,
            "fake_upstream": bool(settings.NEUROROUTE["FAKE_UPSTREAM_URL"]),
            "circuits": breaker.status(),
        }
        code = status.HTTP_503_SERVICE_UNAVAILABLE if health == "unhealthy" else status.HTTP_200_OK
        return Response(body, status=code)
