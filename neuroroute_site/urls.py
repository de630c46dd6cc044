"""Root URLs: the admin, the REST API and its OpenAPI schema, and the gateway."""

from __future__ import annotations

import importlib.util

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("keys.urls")),  # api-keys/, api-keys/<provider>
    path("", include("providers.urls")),  # models, health
]

# --- Gateway: /prompt, /route, /v1/..., history/ -------------------------
# routing/urls.py is written separately; until it exists the rest of the
# project must still load (and its tests run), so include it only when present.
if importlib.util.find_spec("routing.urls") is not None:
    urlpatterns.append(path("", include("routing.urls")))

# JSON errors everywhere, including Django's own 404s and 500s outside DRF.
handler400 = "neuroroute_site.errors.handler400"
handler403 = "neuroroute_site.errors.handler403"
handler404 = "neuroroute_site.errors.handler404"
handler500 = "neuroroute_site.errors.handler500"
