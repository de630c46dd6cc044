"""``python manage.py fake_upstream``: serve the bundled fake OpenAI/Anthropic upstream.

A thin wrapper: everything lives in providers/fake_upstream.py, which stays Django-free so
bench scripts can also run ``python -m providers.fake_upstream``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers import fake_upstream


class Command(BaseCommand):
    help = "Serve a fake OpenAI (/v1/chat/completions) + Anthropic (/v1/messages) upstream, with fault injection."

    def add_arguments(self, parser: CommandParser) -> None:
        fake_upstream.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        fake_upstream.serve(**{name: options[name] for name in fake_upstream.OPTION_NAMES})
