from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from keys.models import ClientToken


class Command(BaseCommand):
    help = "Issue a REST client token. The token is printed once; only its hash is kept."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Who the token is for, e.g. 'billing-app'.")
        parser.add_argument("--admin", action="store_true", help="May manage provider keys via /api-keys/.")

    def handle(self, *args, name: str, admin: bool, **options) -> None:
        name = name.strip()
        if not name or len(name) > ClientToken._meta.get_field("name").max_length:
            raise CommandError("NAME must be 1-100 characters.")
        _token, raw = ClientToken.issue(name=name, is_admin=admin)
        # The token alone on stdout, so `TOKEN=$(manage.py create_client_token x)` works.
        self.stdout.write(raw)
        self.stderr.write("Send it as 'Authorization: Bearer <token>'; it cannot be shown again.")
