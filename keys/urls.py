from __future__ import annotations

from django.urls import path

from keys.views import ApiKeyDetailApi, ApiKeyListApi

urlpatterns = [
    path("api-keys/", ApiKeyListApi.as_view(), name="api-keys"),
    path("api-keys/<slug:provider>", ApiKeyDetailApi.as_view(), name="api-key"),
]
