from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from routing.decision import RouteRequest, RoutingError
from routing.evaluation import load_labeled, score
from routing.gateway_config import config_store
from routing.router import route


class Command(BaseCommand):
    help = "Score the router on a labelled JSONL file: accuracy per source and the macro average."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--json", action="store_true", help="Print the scores as JSON.")

    def handle(self, *args, **options) -> None:
        try:
            items = load_labeled(options["file"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        config = config_store.get_sync()
        if config.classifier is None:
            self.stderr.write("warning: no active classifier; run train_classifier first")
        predictions = []
        for item in items:
            text = item["prompt"]
            try:
                decision = route(RouteRequest(messages=[{"role": "user", "content": text}], prompt_text=text), config)
                predictions.append(decision.model.key)
            except RoutingError:
                predictions.append("")
        result = score(predictions, items)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        for source, stats in sorted(result["per_source"].items()):
            self.stdout.write(f"{source:24} {stats['accuracy']:.3f}  ({stats['correct']}/{stats['n']})")
        self.stdout.write(f"{'macro':24} {result['macro']:.3f}")
        self.stdout.write(f"{'overall':24} {result['overall']:.3f}")
