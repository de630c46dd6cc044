"""Bearer-token authentication for REST clients."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from keys.models import ClientToken, hash_token

KEYWORD = "Bearer"
# last_used_at is for operators spotting idle tokens; minute precision is
# plenty, and it spares a database write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ClientTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` against active ClientTokens.

    A token client is not a Django user: `request.user` is an AnonymousUser
    and `request.auth` is the ClientToken. Requests without a Bearer header
    are left to the next authenticator (the admin's session).
    """

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ClientToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <token>'."
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token: not ASCII.") from None
        token = ClientToken.objects.active().filter(token_hash=hash_token(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        self._touch(token)
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        # Any value here makes DRF answer 401 (with WWW-Authenticate) rather than 403.
        return KEYWORD

    @staticmethod
    def _touch(token: ClientToken) -> None:
        now = timezone.now()
        stale_before = now - LAST_USED_RESOLUTION
        if token.last_used_at is not None and token.last_used_at > stale_before:
            return
        # The condition is repeated in SQL so concurrent workers write once.
        # A queryset update sends no post_save, so no config reload follows.
        ClientToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before), pk=token.pk
        ).update(last_used_at=now)
        token.last_used_at = now


class ClientTokenScheme(OpenApiAuthenticationExtension):
    """Describes the scheme in the OpenAPI schema, so Swagger UI offers 'Authorize'."""

    target_class = ClientTokenAuthentication
    name = "clientToken"

    def get_security_definition(self, auto_schema) -> dict:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=KEYWORD)
