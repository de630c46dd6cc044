"""Seed the registry, providers and keyword rules a fresh install starts with."""

from decimal import Decimal

from django.conf import settings
from django.db import migrations

PROVIDERS = [
    # name, kind, settings key for the base URL, env var holding the key
    ("lmstudio", "openai_compatible", "LMSTUDIO_BASE_URL", "LMSTUDIO_API_KEY"),
    ("openai", "openai", "OPENAI_BASE_URL", "OPENAI_API_KEY"),
    ("anthropic", "anthropic", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
]

MODELS = [
    {
        "key": "local",
        "provider": "lmstudio",
        "upstream_model": "local-lmstudio",
        "capabilities": ["basic", "chat", "simple_math", "file_creation"],
        "context_window": 4096,
        "max_output_tokens": 2048,
        "input_price_per_mtok": Decimal("0"),
        "output_price_per_mtok": Decimal("0"),
        "tier": 1,
        "fallbacks": ["openai"],
    },
    {
        "key": "openai",
        "provider": "openai",
        "upstream_model": "gpt-4-turbo",
        "capabilities": ["analysis", "code", "summarization", "comparison", "complex_reasoning", "tools", "vision"],
        "context_window": 128000,
        "max_output_tokens": 4096,
        "input_price_per_mtok": Decimal("10"),
        "output_price_per_mtok": Decimal("30"),
        "tier": 3,
        "fallbacks": ["anthropic", "local"],
    },
    {
        "key": "anthropic",
        "provider": "anthropic",
        "upstream_model": "claude-3-sonnet",
        "capabilities": ["long_document", "legal", "detailed_reasoning", "analysis", "tools", "vision"],
        "context_window": 200000,
        "max_output_tokens": 4096,
        "input_price_per_mtok": Decimal("3"),
        "output_price_per_mtok": Decimal("15"),
        "tier": 3,
        "fallbacks": ["openai", "local"],
    },
]

RULES = [
    ("create file", ["create file"], "local"),
    ("basic math", ["basic math"], "local"),
    ("hello", ["hello"], "local"),
    ("analyze", ["analyze"], "openai"),
    ("summarize", ["summarize"], "openai"),
    ("code", ["code"], "openai"),
    ("compare", ["compare"], "openai"),
    ("long document", ["long document"], "anthropic"),
    ("legal", ["legal"], "anthropic"),
    ("detailed reasoning", ["detailed reasoning"], "anthropic"),
]


def seed(apps, schema_editor):
    Provider = apps.get_model("providers", "Provider")
    ModelEntry = apps.get_model("providers", "ModelEntry")
    RoutingRule = apps.get_model("routing", "RoutingRule")
    providers = {}
    for name, kind, url_setting, key_env in PROVIDERS:
        providers[name], _ = Provider.objects.get_or_create(
            name=name,
            defaults={"kind": kind, "base_url": settings.NEUROROUTE[url_setting], "api_key_env": key_env},
        )
    entries = {}
    for spec in MODELS:
        spec = dict(spec, provider=providers[spec["provider"]])
        entries[spec["key"]], _ = ModelEntry.objects.get_or_create(key=spec["key"], defaults=spec)
    # Seed rules keep the seed's order: local first, then OpenAI, then Anthropic.
    for position, (name, phrases, target) in enumerate(RULES):
        RoutingRule.objects.get_or_create(
            name=name,
            defaults={"phrases": phrases, "target": entries[target], "priority": 100 - position},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
        ("routing", "0001_initial"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
