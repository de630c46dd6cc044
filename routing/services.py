"""Workflows that span several routing models."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
from django.db import transaction

from routing.classifier import INTENTS, MODEL_KEYS, load_default_examples, train
from routing.models import ClassifierVersion, RoutingExample


def examples_load_defaults(*, only_if_none: bool = False) -> int:
    """Add the shipped examples (source "default") not stored yet; returns how many.

    Training calls it with only_if_none, so examples an operator deleted do
    not come back by themselves; the admin's "load defaults" adds new ones.
    """
    stored = set(RoutingExample.objects.filter(source="default").values_list("text", flat=True))
    if stored and only_if_none:
        return 0
    new = [
        RoutingExample(text=text, intent=intent, source="default")
        for text, intent in load_default_examples()
        if text not in stored
    ]
    RoutingExample.objects.bulk_create(new, batch_size=500)
    return len(new)


def label_for(item: dict) -> str:
    """An evaluation line's label: its intent if it names one, else its first route."""
    for field in ("intent", "label"):
        value = item.get(field)
        if value in INTENTS:
            return value
    routes = item.get("routes") or []
    if not routes:
        raise ValueError("line has neither an intent nor routes")
    return routes[0]


def examples_import(*, path: str | Path, source: str = "") -> int:
    """Import a labelled JSONL file (evaluation format or {"text","intent"})."""
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                item = orjson.loads(raw)
                text = item.get("prompt") or item.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise ValueError("no prompt/text")
                label = label_for(item)
            except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
            rows.append(RoutingExample(text=text, intent=label, source=(source or item.get("source") or "import")[:60]))
    RoutingExample.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def classifier_train(*, activate: bool = True, cross_validate: bool = True) -> ClassifierVersion:
    """Train a new version from every stored example; activate it if asked."""
    examples_load_defaults(only_if_none=True)
    examples = list(RoutingExample.objects.values_list("text", "intent"))
    version = ClassifierVersion.objects.create(examples_count=len(examples))
    try:
        classifier, report = train(examples, cross_validate=cross_validate)
    except ValueError as exc:
        version.status = ClassifierVersion.Status.FAILED
        version.error = str(exc)
        version.save(update_fields=["status", "error"])
        raise
    version.artefact = classifier.to_bytes()
    version.labels = list(report.labels)
    version.cv_accuracy = None if math.isnan(report.cv_accuracy) else report.cv_accuracy
    version.report = {k: v for k, v in report.as_dict().items() if k != "cv_accuracy"}
    version.status = ClassifierVersion.Status.READY
    version.save()
    if activate:
        with transaction.atomic():
            version.activate()
    return version


__all__ = ["MODEL_KEYS", "classifier_train", "examples_import", "examples_load_defaults", "label_for"]
