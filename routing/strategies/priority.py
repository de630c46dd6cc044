"""Priority: pick among the remaining candidates.

Without a priority the best-scoring model wins. With one, every candidate
within PRIORITY_MARGIN of the best score is eligible, and the cheapest,
fastest (observed p50 latency) or highest-tier of them wins.
"""

from __future__ import annotations

from django.conf import settings

from routing.decision import Decision, RoutingError
from routing.latency import latency_stats

PRIORITY_MARGIN = 0.25


def _order(decision: Decision, keys: list[str], scores: dict[str, float]) -> list[str]:
    priority = decision.request.priority
    models = decision.candidates
    if priority == "cost":
        return sorted(keys, key=lambda k: (models[k].price_per_token(), -scores[k]))
    if priority == "speed":
        return sorted(keys, key=lambda k: (latency_stats.p50(k), -scores[k]))
    if priority == "quality":
        return sorted(keys, key=lambda k: (-models[k].tier, -scores[k]))
    return sorted(keys, key=lambda k: -scores[k])


def apply(decision: Decision) -> None:
    if decision.decided:
        return
    if not decision.candidates:
        reasons = "; ".join(f"{key}: {why}" for key, why in decision.dropped.items()) or "no models enabled"
        raise RoutingError(f"No model can serve this request ({reasons})", status=422, code="no_capable_model")
    scores = decision.final_scores()
    ranked = sorted(scores, key=lambda k: -scores[k])
    best = scores[ranked[0]]
    default_key = settings.NEUROROUTE["DEFAULT_MODEL"]
    threshold = settings.NEUROROUTE["CONFIDENCE_THRESHOLD"]
    if best < threshold and default_key in decision.candidates:
        decision.runner_up = ranked[0] if ranked[0] != default_key else (ranked[1] if len(ranked) > 1 else None)
        why = "no rule matched and no classifier" if not decision.intents else f"classifier unsure (best {best:.2f} < {threshold})"
        decision.decide(decision.candidates[default_key], step="default", reason=f"{why}: default model")
        return
    eligible = [k for k in ranked if scores[k] >= best - PRIORITY_MARGIN] if decision.request.priority else ranked
    order = _order(decision, eligible, scores)
    chosen = order[0]
    rest = [k for k in ranked if k != chosen]
    decision.runner_up = rest[0] if rest else None
    top_intent = decision.intents[0][0] if decision.intents else "none"
    if decision.request.priority:
        reason = f"{decision.request.priority} priority among {', '.join(eligible)} (intent {top_intent})"
    else:
        reason = f"best score {scores[chosen]:.2f} for intent {top_intent}"
    decision.decide(decision.candidates[chosen], step="classifier", reason=reason)
