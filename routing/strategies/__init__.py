"""Routing strategies: each a small module with `apply(decision)`.

The pipeline runs them in the order of settings.NEUROROUTE["PIPELINE"];
adding a strategy is one module plus one line in STRATEGIES.
"""

from __future__ import annotations

STRATEGIES: dict[str, str] = {
    "explicit": "routing.strategies.explicit",
    "rules": "routing.strategies.rules",
    "classifier": "routing.strategies.classifier",
    "requirements": "routing.strategies.requirements",
    "priority": "routing.strategies.priority",
}

DEFAULT_PIPELINE = ("explicit", "rules", "classifier", "requirements", "priority")
