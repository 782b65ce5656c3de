"""`labelcycle compare` carries the circular-gold warning a version's metrics.json holds."""

from __future__ import annotations

import json

from tests.cli.test_compare import LABELS_A, LABELS_B, predictions, run, write_version

from labelcycle import catalog


def test_compare_warns_when_a_version_was_evaluated_on_circular_gold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(300, 0.6, 0), LABELS_A)
    b = write_version(tmp_path / "b", predictions(300, 0.9, 1), LABELS_B)
    warning = "circular gold: 300 of 300 of these gold items are derived from the crowd's own labels"
    (b / catalog.METRICS).write_text(json.dumps({"eval_digest": "d1", "gold_warning": warning}))
    res = run("compare", "a", "b", "--n-boot", "50", "--no-log")
    assert res.exit_code == 0, res.output
    assert f"warning: candidate: {warning}" in res.stdout
    out = json.loads(run("compare", "a", "b", "--n-boot", "50", "--no-log", "--json").stdout)
    assert f"candidate: {warning}" in out["notes"]
    plain = run("compare", "b", "a", "--n-boot", "50", "--no-log")
    assert f"warning: base: {warning}" in plain.stdout
