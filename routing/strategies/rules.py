"""Operator rules: phrases (word-boundary, case-insensitive) or regexes.

Phrase rules are indexed by their first word, so a prompt is scanned once
whatever the number of rules; only the few rules whose first word occurs
are checked in full.
"""

from __future__ import annotations

import re

from routing.decision import Decision
from routing.gateway_config import RuleInfo
from routing.strategies.requirements import unfit_reason

HINT_WEIGHT = 0.2
_WORD = re.compile(r"\w+")


def _contains(words: list[str], positions: dict[str, list[int]], phrase: tuple[str, ...]) -> bool:
    for start in positions.get(phrase[0], ()):
        if tuple(words[start : start + len(phrase)]) == phrase:
            return True
    return False


def matching_rules(decision: Decision) -> list[RuleInfo]:
    config = decision.config
    text = decision.request.prompt_text.lower()
    words = _WORD.findall(text)
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        if word in config.rule_index:
            positions.setdefault(word, []).append(index)
    matched: dict[str, RuleInfo] = {}
    for first in positions:
        for phrase, rule in config.rule_index[first]:
            if rule.name not in matched and _contains(words, positions, phrase):
                matched[rule.name] = rule
    for rule in config.pattern_rules:
        if rule.name not in matched and rule.pattern.search(decision.request.prompt_text):
            matched[rule.name] = rule
    return sorted(matched.values(), key=lambda r: (-r.priority, r.name))


def apply(decision: Decision) -> None:
    for rule in matching_rules(decision):
        model = decision.config.models.get(rule.target)
        if model is None:
            continue
        if rule.hint_only:
            decision.hints[rule.target] = decision.hints.get(rule.target, 0.0) + HINT_WEIGHT
            decision.trace.append(f"rules: hint {rule.name!r} favours {rule.target}")
            continue
        reason = unfit_reason(decision, model)
        if reason:
            decision.trace.append(f"rules: {rule.name!r} matched but {rule.target} {reason}")
            continue
        decision.decide(model, step="rule", reason=f"matched rule {rule.name!r}", rule=rule.name)
        return
