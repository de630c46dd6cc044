from __future__ import annotations

from django.core.management.base import BaseCommand

from routing.services import classifier_train


class Command(BaseCommand):
    help = "Train the intent classifier from stored examples and activate it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-activate", action="store_true", help="Train and store, but keep the current version active.")
        parser.add_argument("--no-cv", action="store_true", help="Skip cross-validation (faster).")

    def handle(self, *args, **options) -> None:
        version = classifier_train(activate=not options["no_activate"], cross_validate=not options["no_cv"])
        accuracy = f"{version.cv_accuracy:.3f}" if version.cv_accuracy is not None else "n/a"
        state = "active" if version.is_active else "not activated"
        self.stdout.write(f"classifier v{version.pk}: {version.examples_count} examples, cv accuracy {accuracy} ({state})")
