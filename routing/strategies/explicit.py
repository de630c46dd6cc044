"""Explicit request: the client named a model key or upstream model."""

from __future__ import annotations

from routing.decision import Decision, RoutingError
from routing.strategies.requirements import unfit_reason

AUTO = {"", "auto", "neuroroute", "neuroroute/auto"}


def apply(decision: Decision) -> None:
    requested = (decision.request.requested_model or "").strip()
    if requested.lower() in AUTO:
        return
    model = decision.config.resolve_model(requested)
    if model is None:
        known = ", ".join(sorted(decision.config.models)) or "none"
        raise RoutingError(
            f"Unknown model {requested!r}. Use 'auto' or one of: {known}", status=400, code="unknown_model"
        )
    reason = unfit_reason(decision, model)
    if reason:
        raise RoutingError(f"Model {model.key!r} cannot serve this request: {reason}", status=400, code="model_unfit")
    decision.decide(model, step="explicit", reason=f"requested model {requested!r}")
