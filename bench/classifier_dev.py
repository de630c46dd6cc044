"""Development bench for the intent classifier (routing/classifier.py).

Run from the repository root:

    .venv/bin/python bench/classifier_dev.py [--dev ../shared/evaldata/routing_dev.jsonl]
        [--examples routing/default_examples] [--router] [--no-cv] [--no-loso] [--no-timing] [--errors N]

1. Out of the box: train on the default examples only, route every dev prompt to
   argmax over models of the summed label probabilities (INTENT_ROUTES), score it
   (macro over sources of per-source accuracy).
2. Leave-one-source-out: train on default examples + every dev source but one
   (label = first acceptable route, as `import_examples` stores it), test on the
   held-out source.  Simulates "trained on the dev file, tested on other sources".
3. Timing: p50/p99 of `predict` for short prompts and ~4,000-token prompts, plus
   artefact size and load time.

By default a prompt goes to the model its labels sum highest for (INTENT_ROUTES),
which scores the classifier alone. With --router every prompt goes through the real
router instead (seeded registry and keyword hints of a fresh, throwaway database;
shared capabilities split; the confidence threshold), as `route_eval` does.

The dev file is read at run time only; nothing from it is written anywhere.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from routing.classifier import (
    IntentClassifier,
    best_route,
    load_default_examples,
    train,
)
from routing.evaluation import load_labeled, score
from routing.tokens import count_tokens

DEFAULT_DEV = ROOT.parent / "shared" / "evaldata" / "routing_dev.jsonl"


Routes = Callable[[IntentClassifier, list[dict]], list[str]]


def classifier_routes(clf: IntentClassifier, items: list[dict]) -> list[str]:
    return [best_route(clf.predict(item["prompt"])) for item in items]


def router_routes(data_dir: str) -> Routes:
    """Routing with routing.router.route on a fresh database in data_dir (see --router)."""
    import os

    os.environ.update({"DJANGO_SETTINGS_MODULE": "neuroroute_site.settings", "NEUROROUTE_DATA_DIR": data_dir})
    os.environ.update({"NEUROROUTE_LOG_TO_FILE": "0", "LOG_LEVEL": "WARNING"})
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from routing.decision import RouteRequest
    from routing.gateway_config import config_store
    from routing.router import route

    config = config_store.get_sync()

    def routes(clf: IntentClassifier, items: list[dict]) -> list[str]:
        config.classifier = clf
        requests = (
            RouteRequest(messages=[{"role": "user", "content": item["prompt"]}], prompt_text=item["prompt"])
            for item in items
        )
        return [route(request, config).model.key for request in requests]

    return routes


def print_score(title: str, result: dict) -> None:
    print(f"\n== {title}: macro {result['macro']:.3f}  overall {result['overall']:.3f}")
    for src, s in result["per_source"].items():
        conf = result["confusion"][src]
        print(f"  {src:20s} {s['accuracy']:.3f}  ({s['correct']}/{s['n']})  predicted {conf}")


def print_errors(preds: list[str], items: list[dict], limit: int) -> None:
    wrong = [(p, it) for p, it in zip(preds, items) if p not in it["routes"]]
    print(f"\n-- {len(wrong)} errors (showing {min(limit, len(wrong))}) --")
    for p, it in wrong[:limit]:
        text = it["prompt"].replace("\n", " ")[:110]
        print(f"  [{it['source']}/{it['label']}] want {it['routes']} got {p}: {text}")


def out_of_the_box(
    defaults: list[tuple[str, str]], items: list[dict], cv: bool, errors: int, route_all: Routes
) -> IntentClassifier:
    t0 = time.perf_counter()
    clf, report = train(defaults, cross_validate=cv)
    print(f"trained on {report.n_examples} default examples in {time.perf_counter() - t0:.1f}s; labels {report.labels}")
    if cv:
        print(f"5-fold CV: label accuracy {report.cv_accuracy:.3f}, route accuracy {report.cv_route_accuracy:.3f}")
        for label, s in report.per_label.items():
            print(f"  {label:20s} n={s['n']:4d} acc={s['accuracy']:.3f} route_acc={s['route_accuracy']:.3f}")
    preds = route_all(clf, items)
    result = score(preds, items)
    print_score("out of the box (default examples only)", result)
    for key, s in result["per_label"].items():
        if s["accuracy"] < 1.0:
            print(f"    {key:60s} {s['accuracy']:.2f} ({s['correct']}/{s['n']})")
    if errors:
        print_errors(preds, items, errors)
    return clf


def leave_one_source_out(defaults: list[tuple[str, str]], items: list[dict], errors: int, route_all: Routes) -> None:
    sources = sorted({it["source"] for it in items})
    accuracies = {}
    for held in sources:
        train_set = list(defaults) + [(it["prompt"], it["routes"][0]) for it in items if it["source"] != held]
        test = [it for it in items if it["source"] == held]
        clf, _ = train(train_set, cross_validate=False)
        preds = route_all(clf, test)
        result = score(preds, test)
        accuracies[held] = result["macro"]
        print(f"  held out {held:20s} {result['macro']:.3f}  predicted {result['confusion'][held]}")
        if errors:
            print_errors(preds, test, errors)
    mean = sum(accuracies.values()) / len(accuracies)
    print(f"== leave-one-source-out: mean {mean:.3f}  min {min(accuracies.values()):.3f}")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def timing(clf: IntentClassifier, items: list[dict]) -> None:
    rng = random.Random(0)
    short = [it["prompt"] for it in items if len(it["prompt"]) < 300]
    long_src = [it["prompt"] for it in items if len(it["prompt"]) > 20_000]
    # ~4,000-token prompts: slices of the longest documents, with varied offsets so
    # the per-token cache is not simply warm on one string.
    longs = []
    for _ in range(50):
        doc = rng.choice(long_src)
        start = rng.randrange(0, max(1, len(doc) - 17_000))
        longs.append(doc[start : start + 17_000])
    print(f"\n== timing (long prompts ~{statistics.mean(count_tokens(t) for t in longs[:10]):.0f} tokens)")
    for name, texts in (("short", short), ("4k-token", longs)):
        for t in texts[:20]:
            clf.predict(t)  # warm-up
        samples = []
        for _ in range(3):
            for t in texts:
                t0 = time.perf_counter()
                clf.predict(t)
                samples.append((time.perf_counter() - t0) * 1000)
        p50, p99 = _percentiles(samples)
        print(f"  {name:9s} n={len(samples):5d}  p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    # Cold tokens: a fresh classifier instance has an empty per-token cache.
    fresh = IntentClassifier.from_bytes(clf.to_bytes())
    samples = []
    for t in longs:
        t0 = time.perf_counter()
        fresh.predict(t)
        samples.append((time.perf_counter() - t0) * 1000)
    p50, p99 = _percentiles(samples)
    print(f"  4k cold   n={len(samples):5d}  p50 {p50:.3f} ms  p99 {p99:.3f} ms (first sight of each token)")
    blob = clf.to_bytes()
    t0 = time.perf_counter()
    IntentClassifier.from_bytes(blob)
    print(f"  artefact {len(blob) / 1024:.0f} KiB, from_bytes {1000 * (time.perf_counter() - t0):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--examples", type=Path, default=None, help="default examples directory")
    parser.add_argument("--router", action="store_true", help="route through the real router (see above)")
    parser.add_argument("--no-cv", action="store_true")
    parser.add_argument("--no-loso", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--errors", type=int, default=0, help="print up to N misrouted prompts per run")
    args = parser.parse_args()

    items = load_labeled(args.dev)
    defaults = load_default_examples(args.examples)
    with tempfile.TemporaryDirectory(prefix="nr-classifier-dev-") as data_dir:
        routes = router_routes(data_dir) if args.router else classifier_routes
        clf = out_of_the_box(defaults, items, not args.no_cv, args.errors, routes)
        if not args.no_loso:
            print("\n== leave-one-source-out (defaults + 4 dev sources -> 5th)")
            leave_one_source_out(defaults, items, args.errors, routes)
    if not args.no_timing:
        timing(clf, items)


if __name__ == "__main__":
    main()
