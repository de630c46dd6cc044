"""Request history pages, included by the site under history/."""

from __future__ import annotations

from django.urls import path

from routing import history

urlpatterns = [
    path("", history.history_list, name="history-list"),
    path("<uuid:request_id>/", history.history_detail, name="history-detail"),
]
