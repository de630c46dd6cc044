"""A urlconf with the admin and the history pages, independent of the site's root urls."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("history/", include("routing.history_urls")),
]
