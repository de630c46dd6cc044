"""Who may call what: token clients, admin token clients, and staff in the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

from keys.models import ClientToken

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


def _is_staff_session(request: Request) -> bool:
    # UNAUTHENTICATED_USER is None, so request.user may be None, not AnonymousUser.
    user = request.user
    return bool(user is not None and user.is_authenticated and user.is_staff)


class IsClient(BasePermission):
    """Any valid client token, or a staff user signed in to the admin."""

    message = "A valid client token is required."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ClientToken) or _is_staff_session(request)


class IsAdminClient(BasePermission):
    """An admin client token, or a staff user signed in to the admin."""

    message = "This endpoint needs an admin client token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        return (isinstance(token, ClientToken) and token.is_admin) or _is_staff_session(request)
