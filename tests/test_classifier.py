"""Database-free tests of the intent classifier, token counting and scoring.

Runs with or without pytest-django (`pytest -p no:django tests/test_classifier.py`).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from routing import tokens
from routing.classifier import (
    INTENT_ROUTES,
    INTENTS,
    IntentClassifier,
    best_route,
    load_default_examples,
    route_scores,
    train,
)
from routing.evaluation import load_labeled, score

ROOT = Path(__file__).resolve().parent.parent

GREETINGS = [
    "hi there", "hello!", "good morning", "hey, how are you?", "hiya friend", "howdy",
    "good evening to you", "hello, nice to meet you", "hey hey", "hi, what's up",
]
CODE = [
    "write a python function that reverses a linked list",
    "fix this bug: TypeError: 'NoneType' object is not subscriptable in my loop",
    "def add(a, b):\n    return a + b\n# add type hints and a docstring",
    "implement binary search in java",
    "why does my javascript promise never resolve? async function f() { await g(); }",
    "refactor this class to use dependency injection",
    "write a SQL query joining orders and customers by customer_id",
    "convert this bash script to python",
    "how do I sort a dict by value in python",
    "write unit tests for the parse_date function",
]
LEGAL = [
    "Does the clause grant the licensee an exclusive license? Clause: Licensor hereby grants...",
    "Is the following testimony hearsay under the Federal Rules of Evidence?",
    "Identify the governing law of this agreement between the parties.",
    "Did the court have personal jurisdiction over the defendant in this case?",
    "Does this contract clause cap the liability of either party for breach?",
    "Classify whether the plaintiff's claim survives a motion to dismiss.",
    "Is the indemnification obligation in this agreement mutual?",
    "Does the statute create a private right of action for the plaintiff?",
    "Determine whether the termination clause allows termination for convenience.",
    "Under the agreement, who owns the intellectual property created by the contractor?",
]


# conftest.py's autouse fixtures need Django settings, the database layer and the
# fake upstream; these tests need none of them.  Shadowing the fixtures by name keeps
# this module runnable with `-p no:django` (and fast).
@pytest.fixture(autouse=True)
def _point_providers_at_fake():
    yield


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    yield


def synthetic_examples() -> list[tuple[str, str]]:
    return [(t, "chat") for t in GREETINGS] + [(t, "code") for t in CODE] + [(t, "legal") for t in LEGAL]


@pytest.fixture(scope="module")
def trained() -> tuple[IntentClassifier, object]:
    return train(synthetic_examples(), cross_validate=True, seed=0)


def test_intents_and_routes_are_consistent() -> None:
    assert len(INTENTS) == 11 and len(set(INTENTS)) == 11
    assert set(INTENT_ROUTES) == set(INTENTS)
    assert set(INTENT_ROUTES.values()) == {"local", "openai", "anthropic"}


def test_training_separates_obvious_classes(trained) -> None:
    clf, report = trained
    assert clf.labels == ("chat", "code", "legal")
    assert clf.predict("hello, good morning!")[0][0] == "chat"
    assert clf.predict("write a python function to merge two sorted lists")[0][0] == "code"
    assert clf.predict("Is this clause in the license agreement enforceable by the licensor?")[0][0] == "legal"
    assert report.n_examples == 30
    assert report.labels == ["chat", "code", "legal"]
    assert 0.0 <= report.cv_accuracy <= 1.0
    assert 0.0 <= report.cv_route_accuracy <= 1.0
    assert set(report.per_label) == {"chat", "code", "legal"}
    assert report.per_label["chat"]["n"] == 10
    as_dict = report.as_dict()
    assert as_dict["n_examples"] == 30 and as_dict["cv_accuracy"] == report.cv_accuracy


def test_probabilities_sum_to_one_and_are_sorted(trained) -> None:
    clf, _ = trained
    for text in ["", "hi", "x" * 50_000, "def f():\n    pass\n" * 500, "¿Qué tal? 你好 \ud83d\ude00"]:
        preds = clf.predict(text)
        assert [label for label, _ in sorted(preds)] == sorted(clf.labels)
        probs = [p for _, p in preds]
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)
        assert probs == sorted(probs, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probs)


def test_round_trip_gives_identical_predictions(trained) -> None:
    clf, _ = trained
    blob = clf.to_bytes()
    assert isinstance(blob, bytes) and blob[:4] == b"NRIC"
    clone = IntentClassifier.from_bytes(blob)
    assert clone.labels == clf.labels
    for text in GREETINGS + CODE + LEGAL + ["unseen words entirely: zyxwv qqq", "a" * 10_000]:
        assert clone.predict(text) == clf.predict(text)
    # Serialising the clone reproduces the same bytes (stable artefacts).
    assert clone.to_bytes() == blob


def test_from_bytes_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        IntentClassifier.from_bytes(b"not an artefact")


def test_model_key_labels_and_route_summing() -> None:
    examples = [(t, "local") for t in GREETINGS] + [(t, "openai") for t in CODE] + [(t, "legal") for t in LEGAL]
    clf, _ = train(examples, cross_validate=False)
    assert set(clf.labels) == {"local", "openai", "legal"}
    preds = clf.predict("hey, good morning friend")
    assert best_route(preds) == "local"
    totals = route_scores(preds)
    assert math.isclose(sum(totals.values()), 1.0, abs_tol=1e-9)
    assert best_route(clf.predict("Does the licensor warrant the agreement under the governing law?")) == "anthropic"


def test_two_labels_and_single_label() -> None:
    clf, _ = train([(t, "chat") for t in GREETINGS] + [(t, "code") for t in CODE], cross_validate=False)
    assert clf.predict("write a python function that sorts a list")[0][0] == "code"
    assert clf.predict("hello there friend")[0][0] == "chat"
    single, report = train([(t, "chat") for t in GREETINGS], cross_validate=True)
    assert single.predict("anything")[0] == ("chat", pytest.approx(1.0))
    assert math.isnan(report.cv_accuracy)
    assert report.as_dict()["cv_accuracy"] is None  # JSON has no NaN


def test_training_is_deterministic() -> None:
    a, _ = train(synthetic_examples(), cross_validate=False, seed=3)
    b, _ = train(synthetic_examples(), cross_validate=False, seed=3)
    assert a.to_bytes() == b.to_bytes()


def test_inference_does_not_import_sklearn_or_scipy(trained, tmp_path) -> None:
    clf, _ = trained
    path = tmp_path / "model.bin"
    path.write_bytes(clf.to_bytes())
    code = textwrap.dedent(
        f"""
        import sys
        from routing.classifier import IntentClassifier
        clf = IntentClassifier.from_bytes(open({str(path)!r}, "rb").read())
        clf.predict("hello there")
        bad = [m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy")]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_count_tokens_known_strings() -> None:
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("The quick brown fox jumps over the lazy dog.") == 10
    # Special-token text in user input is counted, not rejected.
    assert tokens.count_tokens("<|endoftext|>") > 1


def test_estimate_tokens() -> None:
    assert tokens.estimate_tokens("") == 0
    assert tokens.estimate_tokens("a") == 1
    assert tokens.estimate_tokens("x" * 400) == 100


def test_count_message_tokens() -> None:
    assert tokens.count_message_tokens([]) == 0
    one = tokens.count_message_tokens([{"role": "user", "content": "hello world"}])
    assert one == tokens.REPLY_PRIMING_TOKENS + tokens.TOKENS_PER_MESSAGE + 2
    parts = tokens.count_message_tokens(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello world"},
                    {"type": "image_url", "image_url": {"url": "data:...", "detail": "low"}},
                ],
            }
        ]
    )
    assert parts == one + tokens.IMAGE_LOW_DETAIL_TOKENS
    high = tokens.count_message_tokens(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    )
    assert high == tokens.REPLY_PRIMING_TOKENS + tokens.TOKENS_PER_MESSAGE + tokens.IMAGE_DEFAULT_TOKENS
    named = tokens.count_message_tokens([{"role": "user", "name": "bob", "content": "hello world"}])
    assert named == one + tokens.count_tokens("bob") + tokens.TOKENS_PER_NAME
    assert tokens.count_message_tokens([{"role": "assistant", "content": None}]) == 7


def test_evaluation_score(tmp_path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_text(
        '{"prompt": "a", "routes": ["local"], "source": "s1", "label": "x"}\n'
        "\n"
        '{"prompt": "b", "routes": ["openai", "anthropic"], "source": "s1", "label": "y"}\n'
        '{"prompt": "c", "routes": ["anthropic"], "source": "s2", "label": "z"}\n'
        '{"prompt": "d", "route": "local"}\n'
    )
    items = load_labeled(path)
    assert len(items) == 4 and items[3]["routes"] == ["local"] and items[3]["source"] == "default"
    result = score(["local", "anthropic", "openai", "local"], items)
    assert result["per_source"]["s1"]["accuracy"] == 1.0
    assert result["per_source"]["s2"]["accuracy"] == 0.0
    assert result["macro"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert result["overall"] == pytest.approx(3 / 4)
    assert result["confusion"]["s2"] == {"openai": 1}
    with pytest.raises(ValueError):
        score(["local"], items)


def test_load_default_examples_reads_jsonl(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "hi", "intent": "chat"}\n\n{"text": "x=1", "intent": "code"}\n')
    (tmp_path / "b.jsonl").write_text('{"text": " ", "intent": "chat"}\n')
    assert load_default_examples(tmp_path) == [("hi", "chat"), ("x=1", "code")]
    # The shipped examples parse and only use known intents.
    shipped = load_default_examples()
    assert all(label in INTENTS for _, label in shipped)
