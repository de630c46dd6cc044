from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from routing.services import examples_import


class Command(BaseCommand):
    help = "Import labelled routing examples from a JSONL file (evaluation format or {text, intent})."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--source", default="", help="Source tag for every imported example.")

    def handle(self, *args, **options) -> None:
        try:
            count = examples_import(path=options["file"], source=options["source"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"imported {count} examples; run train_classifier to use them")
