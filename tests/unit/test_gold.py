from __future__ import annotations

import pandas as pd

from labelcycle.gold import (
    CIRCULAR,
    adjudication_strata,
    circularity,
    comparison_notes,
    majority_labels,
    mark_circular,
    split_warning,
)
from labelcycle.params import IngestParams

P = IngestParams()
LIMITS = {"min_agreement": P.circular_min_agreement, "min_items": P.circular_min_items}


def _crowd(n_items: int) -> pd.DataFrame:
    rows = []
    for i in range(n_items):
        label = "bad" if i % 3 == 0 else "ok"
        other = "ok" if label == "bad" else "bad"
        rows += [[f"i{i}", "a", label], [f"i{i}", "b", label], [f"i{i}", "c", other]]
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def test_majority_labels_leave_out_tied_items():
    ann = pd.DataFrame(
        {"item_id": ["i1", "i1", "i1", "i2", "i2"], "annotator_id": list("abcab"), "label": list("xxyxy")}
    )
    assert majority_labels(ann).to_dict() == {"i1": "x"}


def test_gold_equal_to_the_majority_on_50_items_is_detected_circular_and_on_49_is_not():
    assert (P.circular_min_agreement, P.circular_min_items) == (0.99, 50)
    crowd = _crowd(60)
    majority = majority_labels(crowd)
    gold = pd.DataFrame({"item_id": majority.index[:50], "label": majority.to_numpy()[:50]})
    found = circularity(gold, crowd, None, **LIMITS)
    assert (found.compared, found.majority_agreement, found.detected, found.circular) == (50, 1.0, True, True)
    assert "circular gold" in found.warning() and "--as-gold" in found.warning()
    assert mark_circular(gold, found)[CIRCULAR].all()
    assert not circularity(gold.head(49), crowd, None, **LIMITS).detected  # too few items to tell
    # one disagreement in 50 is 98%: independent enough
    flipped = gold.assign(label=gold["label"].where(gold.index != 0, "other"))
    assert (
        circularity(flipped, crowd, None, **LIMITS).majority_agreement == 0.98
        and not circularity(flipped, crowd, None, **LIMITS).circular
    )


def test_declared_gold_is_circular_item_by_item_and_every_report_gets_the_warning():
    crowd = _crowd(5)
    gold = pd.DataFrame({"item_id": ["i0", "i1", "i2"], "label": ["ok", "ok", "ok"]})
    found = circularity(gold, crowd, {"i1"}, **LIMITS)
    assert (found.declared_items, found.detected, found.circular) == (1, False, True)
    marked = mark_circular(gold, found, {"i1"})
    assert marked[CIRCULAR].tolist() == [False, True, False]
    assert "1 of 3 of these gold items" in split_warning(marked)
    assert (
        split_warning(gold) is None and mark_circular(gold, circularity(gold, crowd, None, **LIMITS)) is gold
    )
    notes = comparison_notes({"gold_warning": "circular gold: x"}, {})
    assert notes == ["base: circular gold: x"]


def test_adjudication_strata_cross_the_label_with_uncertainty_bands():
    labels = pd.DataFrame(
        {"item_id": list("abcdef"), "label": list("xxxyyy"), "confidence": [1, 0.6, 0.3, 0.95, 0.7, 0.5]}
    )
    strata = adjudication_strata(labels)
    assert strata.tolist() == [
        "x|uncertainty:low",
        "x|uncertainty:mid",
        "x|uncertainty:high",
        "y|uncertainty:low",
        "y|uncertainty:mid",
        "y|uncertainty:high",
    ]
