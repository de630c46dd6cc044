"""/api-keys/: operators manage upstream provider keys; keys go in, only masks come out."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from keys.permissions import IsAdminClient
from keys.resolution import KeyStatus, key_statuses
from keys.serializers import ApiKeyCreateInput, ApiKeyOutput, ApiKeyReplaceInput
from keys.services import api_key_delete, api_key_set
from providers.models import Provider

TAGS = ("api-keys",)


def _provider_or_404(name: str) -> Provider:
    provider = Provider.objects.filter(name=name).first()
    if provider is None:
        raise NotFound(f"No provider named {name!r}.")
    return provider


def _key_status_or_404(name: str) -> KeyStatus:
    statuses = key_statuses(Provider.objects.filter(name=name))
    if not statuses:
        raise NotFound(f"No provider named {name!r}.")
    return statuses[0]


class ApiKeyListApi(APIView):
    permission_classes = (IsAdminClient,)

    @extend_schema(tags=TAGS, responses=ApiKeyOutput(many=True), summary="Every provider's key status")
    def get(self, request: Request) -> Response:
        return Response(ApiKeyOutput(key_statuses(), many=True).data)

    @extend_schema(
        tags=TAGS,
        request=ApiKeyCreateInput,
        responses={201: ApiKeyOutput},
        summary="Store a provider's key, replacing any active one",
    )
    def post(self, request: Request) -> Response:
        serializer = ApiKeyCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        provider = serializer.validated_data["provider"]
        api_key_set(
            provider=provider,
            key=serializer.validated_data["key"],
            label=serializer.validated_data["label"],
        )
        return Response(
            ApiKeyOutput(_key_status_or_404(provider.name)).data, status=status.HTTP_201_CREATED
        )


class ApiKeyDetailApi(APIView):
    permission_classes = (IsAdminClient,)

    @extend_schema(tags=TAGS, responses=ApiKeyOutput, summary="One provider's key status")
    def get(self, request: Request, provider: str) -> Response:
        return Response(ApiKeyOutput(_key_status_or_404(provider)).data)

    @extend_schema(
        tags=TAGS,
        request=ApiKeyReplaceInput,
        responses={200: ApiKeyOutput, 201: ApiKeyOutput},
        summary="Replace a provider's key (201 when it had none)",
    )
    def put(self, request: Request, provider: str) -> Response:
        before = _key_status_or_404(provider)
        serializer = ApiKeyReplaceInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key_set(provider=before.provider, **serializer.validated_data)
        return Response(
            ApiKeyOutput(_key_status_or_404(provider)).data,
            status=status.HTTP_200_OK if before.has_key else status.HTTP_201_CREATED,
        )

    @extend_schema(
        tags=TAGS,
        responses={204: None, 404: OpenApiResponse(description="Unknown provider, or no key stored")},
        summary="Delete the provider's stored keys (requests fall back to its environment variable)",
    )
    def delete(self, request: Request, provider: str) -> Response:
        target = _provider_or_404(provider)
        if not api_key_delete(provider=target):
            raise NotFound(f"No key is stored for {provider!r}.")
        return Response(status=status.HTTP_204_NO_CONTENT)
