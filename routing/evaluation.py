"""Scoring of routing decisions against a labeled evaluation file.

The file format is JSON lines: `{"prompt": str, "routes": [acceptable model keys],
"source": str, "label": str}`.  A prediction (a model key) is correct when it is one
of the item's `routes`.  Sources differ wildly in size (hundreds of legal prompts,
a dozen long documents), so the headline number is the *macro* average of the
per-source accuracies; the pooled `overall` accuracy is reported alongside.

Pure functions only: no Django, no I/O except `load_labeled`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import orjson

DEFAULT_SOURCE = "default"


class LabeledFileError(ValueError):
    """A labeled evaluation file is malformed (message names file and line)."""


def load_labeled(path: str | Path) -> list[dict]:
    """Read a labeled JSONL file; blank lines are skipped.

    Every item gets a `routes` list (a single `route` string is accepted too) and a
    `source` (DEFAULT_SOURCE when missing), so `score` can rely on both.
    """
    items: list[dict] = []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                item = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise LabeledFileError(f"{path}:{line_no}: invalid JSON: {exc}") from exc
            prompt = item.get("prompt") if isinstance(item, dict) else None
            if not isinstance(prompt, str):
                raise LabeledFileError(f"{path}:{line_no}: expected an object with a 'prompt' string")
            routes = item.get("routes")
            if routes is None and isinstance(item.get("route"), str):
                routes = [item["route"]]
            if not isinstance(routes, list) or not routes:
                raise LabeledFileError(f"{path}:{line_no}: expected a non-empty 'routes' list")
            item["routes"] = [str(r) for r in routes]
            item["source"] = str(item.get("source") or DEFAULT_SOURCE)
            items.append(item)
    return items


def _accuracy(correct: int, n: int) -> float:
    return correct / n if n else 0.0


def score(predictions: Sequence[str], items: Sequence[dict]) -> dict:
    """Score predicted model keys against `items` (as returned by `load_labeled`).

    Returns:
        {"macro": float, "overall": float, "n": int, "correct": int,
         "per_source": {source: {"accuracy", "correct", "n"}},
         "per_label": {f"{source}/{label}": {"accuracy", "correct", "n"}},
         "confusion": {source: {predicted_key: count}}}
    """
    if len(predictions) != len(items):
        raise ValueError(f"{len(predictions)} predictions for {len(items)} items")
    by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_label: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for predicted, item in zip(predictions, items):
        source = str(item.get("source") or DEFAULT_SOURCE)
        ok = int(predicted in item["routes"])
        for bucket in (by_source[source], by_label[f"{source}/{item.get('label', '')}"]):
            bucket[0] += ok
            bucket[1] += 1
        confusion[source][predicted] += 1

    per_source = {
        src: {"accuracy": _accuracy(c, n), "correct": c, "n": n}
        for src, (c, n) in sorted(by_source.items())
    }
    per_label = {
        key: {"accuracy": _accuracy(c, n), "correct": c, "n": n}
        for key, (c, n) in sorted(by_label.items())
    }
    total_correct = sum(c for c, _ in by_source.values())
    total = sum(n for _, n in by_source.values())
    macro = sum(s["accuracy"] for s in per_source.values()) / len(per_source) if per_source else 0.0
    return {
        "macro": macro,
        "overall": _accuracy(total_correct, total),
        "n": total,
        "correct": total_correct,
        "per_source": per_source,
        "per_label": per_label,
        "confusion": {src: dict(counts) for src, counts in sorted(confusion.items())},
    }
