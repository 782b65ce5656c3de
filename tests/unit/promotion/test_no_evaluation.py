"""A candidate whose eval split was empty (no gold yet) is never promoted: the refusal says why."""

from __future__ import annotations

import json

import pytest

from labelcycle import catalog
from labelcycle.errors import PromotionRefusedError
from labelcycle.promotion.facts import workspace_candidate
from labelcycle.split import no_evaluation


def test_a_workspace_that_was_never_evaluated_is_refused_with_the_reason_and_what_to_do(tmp_path):
    (tmp_path / catalog.REPORTS).mkdir()
    metrics = {"evaluated": False, "reason": no_evaluation(), "eval_items": 0, "ci95": {}}
    (tmp_path / catalog.METRICS).write_text(json.dumps(metrics))
    (tmp_path / catalog.TRAIN_QUALITY_REPORT).write_text(
        json.dumps({"mlflow_run_id": "r1", "registered_model": None, "model_version": None})
    )
    with pytest.raises(PromotionRefusedError, match="no gold labels yet") as exc:
        workspace_candidate(None, tmp_path)  # refused before any store is asked
    assert exc.value.exit_code == 3 and "labelcycle ingest --gold" in str(exc.value)
