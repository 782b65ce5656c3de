"""One condition, one error: no valid annotation row is a ValidationError with one message shape."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner

from labelcycle.cli import main
from labelcycle.errors import ValidationError
from labelcycle.validation import validate

BAD = "item_id,annotator_id,label\ni1,a,spam\ni2,a,spam\n"
SHAPE = r"error: bad\.csv: none of its 2 rows is valid \(unknown_label: 2\); check .+ and the column mapping"


def test_require_annotations_raises_a_validation_error_naming_file_count_reasons_and_fix():
    ann = pd.DataFrame({"item_id": ["i1", "i2"], "annotator_id": ["a", "a"], "label": ["spam", "spam"]})
    result = validate(ann, ["ok", "bad"])
    with pytest.raises(
        ValidationError,
        match=r"^x\.csv: none of its 2 rows is valid \(unknown_label: 2\); check --labels and the column "
        r"mapping$",
    ):
        result.require_annotations("x.csv", "--labels")


@pytest.mark.parametrize(
    "args",
    [("ingest", "--annotations", "bad.csv"), ("annotators", "bad.csv"), ("errors", "bad.csv", "-o", "e.csv")],
    ids=["ingest", "annotators", "errors"],
)
def test_no_valid_rows_gives_the_same_message_shape_and_exit_code_in_every_command(
    project, monkeypatch, args
):
    (project / "bad.csv").write_text(BAD)
    monkeypatch.chdir(project)

    res = CliRunner().invoke(main, list(args), catch_exceptions=False)

    assert res.exit_code == ValidationError.exit_code == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.fullmatch(SHAPE, errors[0]), res.stderr
