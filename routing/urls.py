from django.urls import include, path

from routing import api

urlpatterns = [
    path("prompt", api.prompt_view, name="prompt"),
    path("route", api.route_view, name="route"),
    path("history/", include("routing.history_urls")),
]
