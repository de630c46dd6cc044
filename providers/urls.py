from __future__ import annotations

from django.urls import path

from providers.views import HealthApi, ModelsApi

urlpatterns = [
    path("models", ModelsApi.as_view(), name="models"),
    path("health", HealthApi.as_view(), name="health"),
]
