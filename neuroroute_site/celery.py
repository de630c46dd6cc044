"""The Celery application; tasks run eagerly in-process unless a broker is configured."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")

app = Celery("neuroroute")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
