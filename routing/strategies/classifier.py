"""Learned intent classifier: intent probabilities become model scores.

A model's score is its expected share of the prompt's intents: each
intent's probability is divided among the candidate models that declare it
as a capability (an intent two models share counts half for each), plus the
probability of examples labelled with the model's key directly. Scores of
all candidates sum to at most 1, and an intent every model claims cannot
swamp the intents only one of them is built for.
"""

from __future__ import annotations

from routing.decision import Decision


def apply(decision: Decision) -> None:
    classifier = decision.config.classifier
    if classifier is None:
        decision.trace.append("classifier: none trained yet")
        return
    decision.intents = classifier.predict(decision.request.prompt_text)
    candidates = decision.candidates
    scores = dict.fromkeys(candidates, 0.0)
    for label, probability in decision.intents:
        if label in candidates:
            scores[label] += probability
            continue
        holders = [key for key, model in candidates.items() if label in model.capabilities]
        for key in holders:
            scores[key] += probability / len(holders)
    decision.scores.update(scores)
    top = ", ".join(f"{label} {p:.2f}" for label, p in decision.intents[:3])
    decision.trace.append(f"classifier: {top}")
