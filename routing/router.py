"""Run the routing pipeline for one request."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from django.conf import settings

from routing.decision import Decision, RouteRequest
from routing.gateway_config import GatewayConfig
from routing.strategies import STRATEGIES
from routing.strategies.requirements import drop_unfit
from routing.tokens import count_message_tokens


@cache
def _pipeline(names: tuple[str, ...]):
    return tuple(import_module(STRATEGIES[name]).apply for name in names)


def route(request: RouteRequest, config: GatewayConfig) -> Decision:
    """Choose a model; raises RoutingError when the request cannot be served."""
    decision = Decision(config=config, request=request, candidates=dict(config.models))
    decision.tokens = count_message_tokens(request.messages)
    for step in _pipeline(tuple(settings.NEUROROUTE["PIPELINE"])):
        step(decision)
        if decision.decided:
            break
    # However the choice was made, the fallback chain holds only models that fit.
    drop_unfit(decision)
    return decision
