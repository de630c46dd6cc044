"""The seed's keyword rules become hints once the learned classifier decides.

Alone, these keywords route only about half of real prompts acceptably
("code" in "what's the zip code here"); as hints they still nudge the
classifier towards their target, and operators can make any rule decisive
again in the admin.
"""

from django.db import migrations

SEED_RULES = [
    "create file", "basic math", "hello", "analyze", "summarize",
    "code", "compare", "long document", "legal", "detailed reasoning",
]


def to_hints(apps, schema_editor):
    RoutingRule = apps.get_model("routing", "RoutingRule")
    RoutingRule.objects.filter(name__in=SEED_RULES).update(hint_only=True)


def to_rules(apps, schema_editor):
    RoutingRule = apps.get_model("routing", "RoutingRule")
    RoutingRule.objects.filter(name__in=SEED_RULES).update(hint_only=False)


class Migration(migrations.Migration):
    dependencies = [("routing", "0002_seed")]
    operations = [migrations.RunPython(to_hints, to_rules)]
