"""JSON error answers for every kind of failure: no HTML, no tracebacks."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger("neuroroute.errors")


def error_body(message: str, *, code: str, status: int, **extra) -> dict:
    return {"error": {"message": message, "code": code, "status": status, **extra}}


def json_error(message: str, *, code: str, status: int, **extra) -> JsonResponse:
    return JsonResponse(error_body(message, code=code, status=status, **extra), status=status)


def drf_exception_handler(exc, context) -> Response:
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return Response(error_body("Internal error", code="internal_error", status=500), status=500)
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid input"
        detail = response.data
    else:
        detail = None
        message = str(getattr(exc, "detail", exc))
    code = getattr(exc, "default_code", "error")
    body = error_body(message, code=code, status=response.status_code)
    if detail is not None:
        body["error"]["fields"] = detail
    response.data = body
    return response


def handler400(request, exception=None) -> JsonResponse:
    return json_error("Bad request", code="bad_request", status=400)


def handler403(request, exception=None) -> JsonResponse:
    return json_error("Forbidden", code="forbidden", status=403)


def handler404(request, exception=None) -> JsonResponse:
    return json_error(f"No endpoint at {request.path}", code="not_found", status=404)


def handler500(request) -> JsonResponse:
    return json_error("Internal error", code="internal_error", status=500)
