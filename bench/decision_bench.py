"""Routing decision latency: 1,000 enabled rules + classifier + selection.

Runs the real router (explicit → rules → classifier → requirements →
priority) in-process on its own SQLite database, for prompts from a few
tokens up to ~4,000 tokens, and prints p50/p99 per length bucket.

    python bench/decision_bench.py [--rules 1000] [--iterations 3000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(data_dir: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "neuroroute_site.settings",
            "NEUROROUTE_DATA_DIR": data_dir,
            "NEUROROUTE_LOG_TO_FILE": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_rules(count: int) -> None:
    from providers.models import ModelEntry
    from routing.models import RoutingRule

    rng = random.Random(7)
    targets = list(ModelEntry.objects.all())
    words = [f"{a}{b}" for a in ("zor", "quel", "brix", "vant", "mop", "ulk") for b in range(400)]
    RoutingRule.objects.bulk_create(
        RoutingRule(
            name=f"bench-{i}",
            phrases=[" ".join(rng.sample(words, 2)), rng.choice(words)],
            target=rng.choice(targets),
            priority=rng.randint(1, 1000),
        )
        for i in range(count)
    )


def prompts(rng: random.Random) -> dict[str, list[str]]:
    from routing.classifier import load_default_examples

    texts = [t for t, _ in load_default_examples()]
    short = [t for t in texts if len(t) < 400]
    filler = " ".join(texts)
    buckets = {"short (<100 tokens)": short[:300]}
    for name, chars in (("medium (~500 tokens)", 2_000), ("long (~4,000 tokens)", 15_500)):
        items = []
        for _ in range(100):
            start = rng.randrange(0, max(1, len(filler) - chars))
            items.append(filler[start : start + chars] + "\n\n" + rng.choice(short))
        buckets[name] = items
    return buckets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nr-decision-") as data_dir:
        setup_django(data_dir)
        from routing.decision import RouteRequest
        from routing.gateway_config import config_store
        from routing.router import route
        from routing.services import classifier_train
        from routing.tokens import count_tokens

        classifier_train(activate=True, cross_validate=False)
        make_rules(args.rules)
        config_store.invalidate()
        config = config_store.get_sync()
        assert len(config.rules) >= args.rules and config.classifier is not None

        rng = random.Random(1)
        buckets = prompts(rng)
        results: dict[str, dict[str, float]] = {}
        every: list[float] = []
        for name, items in buckets.items():
            for text in items[:20]:  # warm caches and the tokenizer
                route(RouteRequest(messages=[{"role": "user", "content": text}], prompt_text=text), config)
            timings = []
            for i in range(args.iterations // len(buckets)):
                text = items[i % len(items)]
                request = RouteRequest(messages=[{"role": "user", "content": text}], prompt_text=text)
                started = time.perf_counter()
                route(request, config)
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            every.extend(timings)
            results[name] = {
                "tokens_max": max(count_tokens(t) for t in items),
                "p50_ms": round(statistics.median(timings), 3),
                "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 3),
                "n": len(timings),
            }
        every.sort()
        results["all"] = {
            "p50_ms": round(statistics.median(every), 3),
            "p99_ms": round(every[int(len(every) * 0.99) - 1], 3),
            "n": len(every),
        }
    if args.json:
        print(json.dumps({"rules": args.rules, "results": results}, indent=2))
        return
    print(f"routing decision, {args.rules} enabled rules + classifier + selection")
    for name, stats in results.items():
        print(f"  {name:24} p50 {stats['p50_ms']:7.3f} ms   p99 {stats['p99_ms']:7.3f} ms   (n={stats['n']})")


if __name__ == "__main__":
    main()
