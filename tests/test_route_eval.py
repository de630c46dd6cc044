"""The shipped router, out of the box, on the labelled development set."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from routing.services import classifier_train

DEV_SET = Path(settings.BASE_DIR).parent / "shared" / "evaldata" / "routing_dev.jsonl"
OUT_OF_THE_BOX_TARGET = 0.90


@pytest.fixture
def default_classifier(db):
    # The default example set only: what a fresh install trains.
    return classifier_train(activate=True, cross_validate=False)


@pytest.mark.skipif(not DEV_SET.exists(), reason="the shared evaluation set sits beside the checkout in CI")
def test_out_of_the_box_routing_meets_target_on_dev_set(default_classifier):
    out = StringIO()
    call_command("route_eval", str(DEV_SET), "--json", stdout=out)
    result = json.loads(out.getvalue())
    per_source = {source: round(stats["accuracy"], 3) for source, stats in result["per_source"].items()}
    assert result["macro"] >= OUT_OF_THE_BOX_TARGET, per_source


def test_route_eval_scores_a_labelled_file(default_classifier, tmp_path):
    labelled = tmp_path / "tiny.jsonl"
    lines = [
        {"prompt": "hey there, how are you doing today?", "routes": ["local"], "source": "a"},
        {"prompt": "Write a Python function that merges two sorted lists.", "routes": ["openai"], "source": "a"},
        {"prompt": "Does this indemnification clause survive termination of the agreement?", "routes": ["anthropic"], "source": "b"},
    ]
    labelled.write_text("\n".join(json.dumps(line) for line in lines))
    out = StringIO()
    call_command("route_eval", str(labelled), "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert set(result["per_source"]) == {"a", "b"}
    assert result["n"] == 3
    assert result["macro"] == pytest.approx(
        (result["per_source"]["a"]["accuracy"] + result["per_source"]["b"]["accuracy"]) / 2
    )


def test_import_examples_takes_first_route_unless_an_intent_is_named(db, tmp_path):
    from routing.models import RoutingExample

    path = tmp_path / "labelled.jsonl"
    path.write_text(
        json.dumps({"prompt": "p1", "routes": ["openai", "local"], "source": "s", "label": "writing"})
        + "\n"
        + json.dumps({"prompt": "p2", "routes": ["anthropic"], "source": "s", "intent": "legal"})
        + "\n"
    )
    call_command("import_examples", str(path), stdout=StringIO())
    assert dict(RoutingExample.objects.values_list("text", "intent")) == {"p1": "openai", "p2": "legal"}
