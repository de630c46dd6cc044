"""Learned intent classifier: intent probabilities become model scores.

A model's score is the probability mass of the intents it declares as
capabilities, plus that of examples labelled with its key directly.
"""

from __future__ import annotations

from routing.decision import Decision


def apply(decision: Decision) -> None:
    classifier = decision.config.classifier
    if classifier is None:
        decision.trace.append("classifier: none trained yet")
        return
    decision.intents = classifier.predict(decision.request.prompt_text)
    for key, model in decision.candidates.items():
        decision.scores[key] = sum(p for label, p in decision.intents if label in model.capabilities or label == key)
    top = ", ".join(f"{label} {p:.2f}" for label, p in decision.intents[:3])
    decision.trace.append(f"classifier: {top}")
