"""The routing decision: what was chosen, and why at each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.gateway_config import GatewayConfig, ModelInfo


class RoutingError(Exception):
    """The request cannot be routed as asked (the client's fault, so a 4xx)."""

    def __init__(self, message: str, *, status: int = 400, code: str = "routing_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass
class RouteRequest:
    """What the router looks at, whichever API the request came in through."""

    messages: list[dict[str, Any]]
    prompt_text: str  # the latest user turn: what rules and the classifier read
    requested_model: str | None = None  # a key or upstream name; None or "auto" = route
    priority: str | None = None  # "cost" | "speed" | "quality"
    max_tokens: int | None = None
    needs: frozenset[str] = frozenset()  # capabilities the request itself requires


@dataclass
class Decision:
    config: GatewayConfig
    request: RouteRequest
    tokens: int = 0
    candidates: dict[str, ModelInfo] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    hints: dict[str, float] = field(default_factory=dict)
    intents: list[tuple[str, float]] = field(default_factory=list)
    model: ModelInfo | None = None
    step: str = ""
    reason: str = ""
    rule: str | None = None
    runner_up: str | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.model is not None

    def decide(self, model: ModelInfo, *, step: str, reason: str, rule: str | None = None) -> None:
        self.model, self.step, self.reason, self.rule = model, step, reason, rule
        self.trace.append(f"{step}: {reason}")

    def final_scores(self) -> dict[str, float]:
        return {
            key: self.scores.get(key, 0.0) + self.hints.get(key, 0.0)
            for key in self.candidates
        }

    def fallback_chain(self) -> list[ModelInfo]:
        """Models to try, in order, when the chosen one fails."""
        assert self.model is not None
        chain = [self.model]
        seen = {self.model.key}
        for key in self.model.fallbacks:
            model = self.candidates.get(key)
            if model is not None and key not in seen:
                chain.append(model)
                seen.add(key)
        return chain

    def summary(self) -> dict[str, Any]:
        return {"model": self.model.key if self.model else None, "reason": self.reason, "rule": self.rule}

    def explain(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "step": self.step,
            "upstream_model": self.model.upstream_model if self.model else None,
            "intents": [[label, round(p, 4)] for label, p in self.intents[:3]],
            "scores": {key: round(value, 4) for key, value in self.final_scores().items()},
            "tokens": self.tokens,
            "priority": self.request.priority,
            "dropped": self.dropped,
            "runner_up": self.runner_up,
            "fallbacks": [m.key for m in self.fallback_chain()[1:]] if self.model else [],
            "classifier_version": self.config.classifier_version,
            "trace": self.trace,
        }
