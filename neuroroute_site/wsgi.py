"""WSGI entry point (management and tooling; the gateway itself is served over ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neuroroute_site.settings")

application = get_wsgi_application()
