"""Gold commands: ``gold sample`` (items worth adjudicating, as a review sheet) and the ``--as-gold`` path
of ``review import`` (:func:`import_as_gold`: adjudicated labels become a gold batch)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.cli.options import add_raw_batch, path_option, repo_option
from labelcycle.compressed import InputLimits
from labelcycle.errors import ConfigError, StateError, ValidationError

#: what a gold batch made from a review sheet records as its origin
ADJUDICATED = "adjudicated"


@click.group()
def gold() -> None:
    """Gold labels: sample items worth adjudicating; `review import --as-gold` brings the verdicts back."""


@gold.command("sample")
@click.option("--budget", type=click.IntRange(min=1), required=True, help="Number of items to adjudicate.")
@click.option(
    "--stratify-by",
    default=None,
    help="An item feature column to stratify by instead of the consensus label (always crossed with "
    "uncertainty bands).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw within each stratum.")
@path_option(
    "-o",
    "--out",
    required=True,
    help="Review sheet (CSV/TSV/Parquet/JSONL), the format `review export` writes; fill in review_label.",
)
@repo_option()
def gold_sample(budget, stratify_by, seed, out, repo) -> None:
    """Pick BUDGET items worth adjudicating into gold, as a review sheet.

    The budget is shared across strata (the consensus label, or --stratify-by, crossed with low, mid and
    high uncertainty of the consensus) in proportion to their sizes, and drawn at random within each, so
    the gold covers every label and easy as well as hard items (not only the most uncertain ones, which
    would make a biased eval set). Items that already have gold are never picked. Fill in review_label
    (the adjudicated label) and reviewer_id, then `labelcycle review import SHEET --as-gold`.
    """
    from labelcycle.catalog import Catalog
    from labelcycle.cli.review_files import SPREADSHEET_FORMATS
    from labelcycle.detection.review import (
        CURRENT,
        UNCERTAINTY,
        item_priorities,
        review_sheet,
        select_for_review,
    )
    from labelcycle.gold import adjudication_strata
    from labelcycle.readers import detect_format, write_table
    from labelcycle.spreadsheet import escape_frame
    from labelcycle.versioning.dvc import find_root

    fmt, _ = detect_format(out)
    cat = Catalog(find_root(repo))
    for name, rel in (("annotations", catalog.ANNOTATIONS), ("consensus", catalog.LABELS_RAW)):
        if not cat.exists(rel):
            raise StateError(f"{cat.path(rel)}: missing ({name}); run `dvc repro aggregate` first")
    labels = pd.read_parquet(cat.path(catalog.LABELS_RAW))
    annotations = pd.read_parquet(cat.path(catalog.ANNOTATIONS))
    items = pd.read_parquet(cat.path(catalog.ITEMS)) if cat.exists(catalog.ITEMS) else None
    have_gold = gold_items(cat.root, cat.path(catalog.GOLD) if cat.exists(catalog.GOLD) else None)
    if cat.exists(catalog.ERROR_SCORES):
        pri = item_priorities(pd.read_parquet(cat.path(catalog.ERROR_SCORES)), labels)
    else:  # no error model yet: the consensus' own uncertainty
        pri = item_priorities(labels.assign(label_error_score=1.0 - labels[schema.CONFIDENCE]), labels)
    pri = pri[~pri[schema.ITEM_ID].isin(have_gold)]
    pri = pri.reset_index(drop=True)
    if pri.empty:
        raise StateError("every item with a consensus already has gold; there is nothing left to adjudicate")
    by = None
    if stratify_by not in (None, "label"):  # "label": the consensus label, as `review export` calls it
        known = schema.feature_columns(list(items.columns)) if items is not None else []
        if stratify_by not in known:
            raise ConfigError(
                f"--stratify-by {stratify_by!r} is not an item column; choose one of {known} (or leave it out "
                "to stratify by the consensus label)"
            )
        by = (
            pri[schema.ITEM_ID].map(items.set_index(schema.ITEM_ID)[stratify_by].astype(str)).fillna("(none)")
        )
    consensus = pd.DataFrame(
        {
            schema.ITEM_ID: pri[schema.ITEM_ID],
            schema.LABEL: pri[CURRENT],
            schema.CONFIDENCE: 1.0 - pri[UNCERTAINTY],
        }
    )
    strata = adjudication_strata(consensus, by)
    picked = select_for_review(pri, budget, by="random", stratify=strata, seed=seed)
    sheet = review_sheet(picked, annotations, items)
    write_table(escape_frame(sheet) if fmt in SPREADSHEET_FORMATS else sheet, out)
    n_strata = strata[pri[schema.ITEM_ID].isin(set(picked[schema.ITEM_ID])).to_numpy()].nunique()
    click.echo(
        f"gold sample: {len(sheet)} items from {n_strata} strata of {strata.nunique()} (consensus "
        f"{'label' if by is None else stratify_by} x uncertainty) -> {out}; fill in review_label (the "
        f"adjudicated label) and reviewer_id, then `labelcycle review import {out} --as-gold`"
    )


def gold_items(root: Path, interim: Path | None) -> set[str]:
    """Items that have gold: in the ingest stage's gold table, and in every raw batch's gold file (a batch
    imported since the stage last ran counts too)."""
    from labelcycle.readers import read_table
    from labelcycle.versioning import raw

    have: set[str] = set()
    if interim is not None:
        have |= set(pd.read_parquet(interim, columns=[schema.ITEM_ID])[schema.ITEM_ID].astype(str))
    for batch in raw.list_batches(root):
        path = batch.file("gold")
        if path is not None:
            gold = read_table(path, "gold", batch.columns("gold"), InputLimits.unlimited())
            have |= set(gold[schema.ITEM_ID].astype(str).str.strip())
    return have


def import_as_gold(
    root: Path, reviewed: pd.DataFrame, batch_file: Path, sheet_sha256: str
) -> tuple[object, bool]:
    """Add adjudicated review labels (:func:`~labelcycle.detection.review.parse_review`'s table) as a
    gold-only raw batch whose manifest records the origin ``adjudicated`` and the reviewers.

    Raises:
        ValidationError: reviewers gave one item different labels (the message names the items).
    """
    from labelcycle.readers import ColumnMap
    from labelcycle.versioning import raw

    verdicts = reviewed.groupby(schema.ITEM_ID, sort=True)[schema.LABEL].nunique()
    split = verdicts[verdicts > 1].index.tolist()
    if split:
        shown = ", ".join(map(repr, split[:5])) + (f" and {len(split) - 5} more" if len(split) > 5 else "")
        raise ValidationError(
            f"{batch_file}: reviewers disagree on item(s) {shown}; gold needs one verdict per item: settle "
            "them in the sheet (one row, or the same review_label) and import again"
        )
    gold = reviewed.drop_duplicates(schema.ITEM_ID)[[schema.ITEM_ID, schema.LABEL]]
    reviewers = sorted(reviewed[schema.ANNOTATOR_ID].astype(str).unique())
    origin = {
        "kind": "review",
        "as": "gold",
        "gold_origin": ADJUDICATED,
        "reviewers": ",".join(reviewers),
        "sheet": str(batch_file.resolve()),
        "sheet_sha256": sheet_sha256,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gold.csv"
        gold.to_csv(path, index=False)
        return add_raw_batch(
            root,
            [raw.BatchFile("gold", path, ColumnMap())],
            {"gold": len(gold)},
            "labelcycle review import --as-gold",
            origin,
        )


def import_gold(root: Path, reviewed: pd.DataFrame, note: str, batch_file: Path, sha256: str | None) -> None:
    """``review import --as-gold``: the reviewed labels become a gold batch (:func:`import_as_gold`)."""
    batch, new = import_as_gold(root, reviewed, batch_file, sha256)
    if not new:
        click.echo(f"review import: batch {batch.digest} is already in {catalog.RAW}; nothing to do")
        return
    n_items = reviewed[schema.ITEM_ID].nunique()
    click.echo(
        f"review import: {n_items} adjudicated gold labels ({note}) -> gold batch "
        f"{batch.digest}; run `dvc repro` to evaluate on them"
    )


COMMANDS = [gold]
