"""Complexity and requirements: drop models that cannot serve the request.

A model is unfit when the conversation plus the requested output does not
fit its context window, or when the request needs a capability (images,
tools) it lacks. Long documents also raise the score of models built for them.
"""

from __future__ import annotations

from django.conf import settings

from routing.decision import Decision
from routing.gateway_config import ModelInfo

LONG_DOCUMENT_BOOST = 0.5


def unfit_reason(decision: Decision, model: ModelInfo) -> str | None:
    request = decision.request
    output = request.max_tokens or min(model.max_output_tokens, 1024)
    if request.max_tokens and request.max_tokens > model.max_output_tokens:
        return f"max_tokens {request.max_tokens} exceeds its output limit {model.max_output_tokens}"
    if decision.tokens + output > model.context_window:
        return f"needs {decision.tokens} + {output} tokens, context window is {model.context_window}"
    missing = request.needs - model.capabilities
    if missing:
        return f"lacks {', '.join(sorted(missing))}"
    if model.key_error:
        return f"provider key unusable: {model.key_error}"
    return None


def drop_unfit(decision: Decision) -> None:
    for key, model in list(decision.candidates.items()):
        reason = unfit_reason(decision, model)
        if reason:
            decision.dropped[key] = reason
            del decision.candidates[key]


def apply(decision: Decision) -> None:
    drop_unfit(decision)
    if decision.tokens >= settings.NEUROROUTE["LONG_DOCUMENT_TOKENS"]:
        boosted = [key for key, m in decision.candidates.items() if "long_document" in m.capabilities]
        for key in boosted:
            decision.hints[key] = decision.hints.get(key, 0.0) + LONG_DOCUMENT_BOOST
        if boosted:
            decision.trace.append(f"requirements: long document ({decision.tokens} tokens) favours {', '.join(boosted)}")
