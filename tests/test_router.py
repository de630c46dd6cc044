"""The routing pipeline: explicit → rules → classifier → requirements → priority."""

from __future__ import annotations

import pytest

from providers.models import ModelEntry
from routing.classifier import train
from routing.decision import RouteRequest, RoutingError
from routing.gateway_config import config_store
from routing.latency import latency_stats
from routing.models import ClassifierVersion, RoutingRule
from routing.router import route

TINY_EXAMPLES = [
    *[(t, "chat") for t in ("hi there", "how are you", "tell me a joke", "good morning friend", "thanks a lot", "what's up")],
    *[(t, "code") for t in ("write a python function", "fix this javascript bug", "refactor my java class",
                            "sql query to join tables", "implement quicksort in rust", "debug my python script")],
    *[(t, "legal") for t in ("is this contract clause enforceable", "does the lease allow subletting under state law",
                             "is the indemnification provision valid", "explain hearsay exceptions in court",
                             "review this non-compete agreement", "statute of limitations for breach of contract")],
    *[(t, "analysis") for t in ("analyze these sales figures", "evaluate this business plan", "interpret the survey data",
                                "assess the risks of the strategy", "analyze the argument in this essay",
                                "examine the trends in the data")],
]


@pytest.fixture
def classifier(db):
    clf, _ = train(TINY_EXAMPLES, cross_validate=False)
    version = ClassifierVersion.objects.create(
        status=ClassifierVersion.Status.READY, artefact=clf.to_bytes(), examples_count=len(TINY_EXAMPLES)
    )
    version.activate()
    return version


def decide(text: str, **kwargs):
    request = RouteRequest(messages=[{"role": "user", "content": text}], prompt_text=text, **kwargs)
    return route(request, config_store.get_sync())


def test_explicit_key_wins(db):
    decision = decide("hello there", requested_model="anthropic")
    assert decision.model.key == "anthropic"
    assert decision.step == "explicit"


def test_explicit_upstream_model_name_resolves_to_its_key(db):
    assert decide("hi", requested_model="gpt-4-turbo").model.key == "openai"


def test_auto_means_route(db, classifier):
    assert decide("write a python function please", requested_model="auto").step != "explicit"


def test_unknown_model_is_a_client_error_naming_the_choices(db):
    with pytest.raises(RoutingError) as caught:
        decide("hi", requested_model="gpt-99")
    assert caught.value.status == 400
    assert "local" in caught.value.message and "openai" in caught.value.message


def test_explicit_model_too_small_for_the_prompt_is_refused(db):
    with pytest.raises(RoutingError) as caught:
        decide("word " * 6000, requested_model="local")
    assert "context window" in caught.value.message


def test_max_tokens_above_model_limit_is_refused_for_explicit_model(db):
    with pytest.raises(RoutingError) as caught:
        decide("hi", requested_model="local", max_tokens=100_000)
    assert "max_tokens" in caught.value.message


def test_decisive_rule_matches_on_word_boundaries_case_insensitively(db):
    target = ModelEntry.objects.get(key="anthropic")
    RoutingRule.objects.create(name="contracts", phrases=["Master Agreement"], target=target, priority=500)
    assert decide("please read this MASTER   agreement carefully").rule == "contracts"
    assert decide("masteragreement is one word").rule is None


def test_highest_priority_rule_decides(db):
    RoutingRule.objects.create(name="low", phrases=["quarterly"], target=ModelEntry.objects.get(key="local"), priority=1)
    RoutingRule.objects.create(name="high", phrases=["report"], target=ModelEntry.objects.get(key="openai"), priority=900)
    decision = decide("the quarterly report")
    assert (decision.rule, decision.model.key, decision.step) == ("high", "openai", "rule")


def test_regex_rule(db):
    RoutingRule.objects.create(name="ticket", pattern=r"\bJIRA-\d+\b", target=ModelEntry.objects.get(key="openai"), priority=900)
    assert decide("look at jira-1234 for me").rule == "ticket"


def test_rule_whose_target_cannot_fit_falls_through(db):
    RoutingRule.objects.create(name="tiny", phrases=["essay"], target=ModelEntry.objects.get(key="local"), priority=900)
    decision = decide("essay " + "word " * 6000)
    assert decision.model.key != "local"
    assert any("tiny" in line and "context window" in line for line in decision.trace)


def test_hint_rule_nudges_without_deciding(db, classifier):
    RoutingRule.objects.create(
        name="nudge", phrases=["zebra"], target=ModelEntry.objects.get(key="anthropic"), priority=900, hint_only=True
    )
    decision = decide("zebra")
    assert decision.step != "rule"
    assert decision.hints.get("anthropic", 0) > 0


def test_seeded_keyword_rules_are_hints(db):
    assert set(RoutingRule.objects.values_list("hint_only", flat=True)) == {True}


def test_classifier_routes_by_intent_and_explains(db, classifier):
    decision = decide("write a python function please")
    assert decision.model.key == "openai"
    explanation = decision.explain()
    assert explanation["intents"][0][0] == "code"
    assert explanation["step"] == "classifier"
    assert set(explanation["scores"]) == {"local", "openai", "anthropic"}
    assert explanation["runner_up"] in {"local", "anthropic"}
    assert explanation["tokens"] > 0
    assert explanation["classifier_version"] == classifier.pk


def test_without_classifier_the_default_model_answers_and_says_why(db):
    decision = decide("something entirely unclear")
    assert decision.model.key == "local"
    assert decision.step == "default"
    assert "default" in decision.reason


def test_low_confidence_falls_back_to_default(db, classifier, settings):
    settings.NEUROROUTE = {**settings.NEUROROUTE, "CONFIDENCE_THRESHOLD": 1.01}
    decision = decide("please fix this python bug")
    assert decision.step == "default"
    assert "unsure" in decision.reason


def test_long_prompt_drops_small_context_models(db, classifier):
    decision = decide("analyze the following report. " + "The revenue grew in the third quarter. " * 800)
    assert "local" in decision.dropped
    assert "context window" in decision.dropped["local"]
    assert decision.model.key in {"openai", "anthropic"}


def test_images_require_vision(db, classifier):
    request = RouteRequest(
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
        prompt_text="hi",
        needs=frozenset({"vision"}),
    )
    decision = route(request, config_store.get_sync())
    assert decision.dropped["local"] == "lacks vision"
    assert decision.model.key in {"openai", "anthropic"}


def test_no_capable_model_is_a_clear_error(db):
    request = RouteRequest(messages=[{"role": "user", "content": "hi"}], prompt_text="hi", needs=frozenset({"teleport"}))
    with pytest.raises(RoutingError) as caught:
        route(request, config_store.get_sync())
    assert caught.value.status == 422
    assert "lacks teleport" in caught.value.message


def test_cost_priority_picks_the_cheapest_near_best(db, classifier):
    # "analysis" is a capability of both openai and anthropic; anthropic is cheaper.
    decision = decide("analyze these sales figures and evaluate the trends", priority="cost")
    assert decision.model.key == "anthropic"
    assert "cost priority" in decision.reason


def test_quality_priority_picks_the_highest_tier(db, classifier):
    ModelEntry.objects.filter(key="openai").update(tier=5)
    config_store.invalidate()
    decision = decide("analyze these sales figures and evaluate the trends", priority="quality")
    assert decision.model.key == "openai"


def test_speed_priority_uses_observed_latency(db, classifier):
    latency_stats.seed("openai", [900.0] * 10)
    latency_stats.seed("anthropic", [100.0] * 10)
    decision = decide("analyze these sales figures and evaluate the trends", priority="speed")
    assert decision.model.key == "anthropic"


def test_admin_change_reaches_the_router_without_restart(db, classifier):
    assert decide("bananas are great").rule is None
    RoutingRule.objects.create(name="fruit", phrases=["bananas"], target=ModelEntry.objects.get(key="anthropic"), priority=10)
    assert decide("bananas are great").rule == "fruit"


def test_disabled_model_is_not_routed_to(db):
    ModelEntry.objects.filter(key="anthropic").update(enabled=False)
    config_store.invalidate()
    with pytest.raises(RoutingError):
        decide("hi", requested_model="anthropic")


def test_fallback_chain_follows_registry_order_and_skips_unfit(db):
    decision = decide("hi", requested_model="openai")
    assert [m.key for m in decision.fallback_chain()] == ["openai", "anthropic", "local"]
    decision = decide("word " * 6000, requested_model="openai")
    assert [m.key for m in decision.fallback_chain()] == ["openai", "anthropic"]


def test_a_thousand_rules_match_correctly(db):
    target = ModelEntry.objects.get(key="openai")
    RoutingRule.objects.bulk_create(
        RoutingRule(name=f"rule-{i}", phrases=[f"token{i} marker", f"alias{i}"], target=target, priority=i)
        for i in range(1000)
    )
    config_store.invalidate()
    assert decide("nothing relevant here").rule is None
    assert decide("we saw token517 marker today").rule == "rule-517"
    assert decide("alias3 and alias998 both").rule == "rule-998"
    assert decide("token517 without its second word").rule is None
