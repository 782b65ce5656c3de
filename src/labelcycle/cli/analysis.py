"""Analysis commands: ``annotators``, ``errors``, ``review export|import``, ``simulate-review``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.cli import review_files
from labelcycle.cli.options import (
    add_raw_batch,
    colmap,
    column_options,
    gold_colmap,
    gold_column_options,
    labels_option,
    labels_seen,
    maybe_root,
    path_option,
    repo_option,
    stage_defaults,
)
from labelcycle.errors import ConfigError, InputFileError, StateError


@click.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@path_option(
    "--items", "items_file", default=None, help="Items (features) file: its columns become root-cause slices."
)
@path_option("--gold", "gold_file", default=None, help="Gold labels file.")
@path_option(
    "-o", "--out", default=None, help="Annotator table (one row per annotator); CSV or Parquet by extension."
)
@path_option("--report", "report_file", default=None, help="Self-contained HTML report (opens offline).")
@click.option(
    "--method",
    default=None,
    help="Aggregation method of the consensus (default: the project's aggregate.method, else the "
    "recommended one).",
)
@labels_option
@column_options
@gold_column_options
def annotators(
    annotations_file,
    items_file,
    gold_file,
    out,
    report_file,
    method,
    label_set,
    item_col,
    annotator_col,
    label_col,
    gold_item_col,
    gold_label_col,
) -> None:
    """Annotator quality, spammers, drift, agreement and root causes of disagreement."""
    from labelcycle.aggregation import make_aggregator
    from labelcycle.annotators import analyse_annotators, render_report
    from labelcycle.annotators import self_agreement as sa
    from labelcycle.readers import read_table, write_table
    from labelcycle.validation import validate

    here = stage_defaults()
    ann = read_table(annotations_file, "annotations", colmap(item_col, annotator_col, label_col))
    items = read_table(items_file, "items", colmap(item_col, None, None)) if items_file else None
    gold = read_table(gold_file, "gold", gold_colmap(gold_item_col, gold_label_col)) if gold_file else None
    classes = here.labels(label_set)
    labels = classes or labels_seen(ann)
    # the pipeline's rules: repeated (item, annotator) judgements keep the latest for the consensus (the
    # others measure self-agreement), bad rows are set aside with a reason, item features are typed
    result = validate(ann, labels, items, gold)
    result.require_annotations(annotations_file, f"--labels (now {labels})")
    counts = result.counts["annotations"]
    if counts.quarantined or counts.repeats:
        click.echo(
            f"  annotations: {counts.read} rows, {counts.kept} kept, {counts.repeats} repeats, "
            f"{counts.quarantined} set aside" + (f" ({counts.reasons_text()})" if counts.reasons else "")
        )
    method = method or here.params.aggregate.method
    df = result.annotations
    agg = make_aggregator(method, classes=classes).fit(
        df[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]]
    )
    analysis = analyse_annotators(
        df, agg, items=result.items, gold=result.gold, params=here.params.annotators
    )
    selfagree = sa.self_agreement(df, result.repeats)
    analysis = dataclasses.replace(analysis, table=sa.with_self_agreement(analysis.table, selfagree))
    if out is not None:
        write_table(analysis.table, out)
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(
            render_report(analysis, title=f"Annotator report: {annotations_file.name}"), encoding="utf-8"
        )

    def fmt(v: object) -> str:
        return "n/a" if v is None else f"{float(v):.3f}"  # type: ignore[arg-type]

    a = analysis.agreement
    click.echo(
        f"annotators: {len(analysis.table)} annotators, {len(df)} labels on "
        f"{df[schema.ITEM_ID].nunique()} items (consensus: {method})"
    )
    click.echo(
        f"  agreement: Krippendorff alpha {fmt(a.get('krippendorff_alpha'))}, "
        f"Fleiss kappa {fmt(a.get('fleiss_kappa'))}"
    )
    click.echo(f"  {sa.describe(selfagree)}")
    spam = analysis.spammers
    click.echo(f"  spammers ({len(spam)}): {', '.join(spam) if spam else 'none'}")
    causes = analysis.root_causes
    if causes.empty:
        click.echo("  root causes: no group stands out")
    else:
        click.echo("  top root causes:")
        for r in causes.head(3).itertuples():
            click.echo(f"    {r.rank}. {r.finding}")
        if len(causes) > 3:
            where = "in the report" if report_file is not None else "with --report FILE.html"
            click.echo(f"    ... and {len(causes) - 3} more {where}")
    written = [str(p) for p in (out, report_file) if p is not None]
    if written:
        click.echo(f"  -> {', '.join(written)}")


@click.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@path_option("--items", "items_file", default=None, help="Items (features) file.")
@path_option(
    "--gold",
    "gold_file",
    default=None,
    help="Gold labels for training the error model (never pass the eval split).",
)
@path_option(
    "-o",
    "--out",
    default=Path("label_errors.csv"),
    show_default=True,
    help="Output file; CSV, TSV, Parquet or JSONL by extension.",
)
@labels_option
@click.option(
    "--method",
    default=None,
    help="Aggregator fitted inside the folds (default: the project's train_error_model.features.aggregator, "
    "else its aggregate.method; outside a project the default method).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="is_label_error_issue = label_error_score >= threshold (default: train_error_model.threshold).",
)
@column_options
@gold_column_options
def errors(
    annotations_file,
    items_file,
    gold_file,
    out,
    label_set,
    method,
    threshold,
    item_col,
    annotator_col,
    label_col,
    gold_item_col,
    gold_label_col,
) -> None:
    """Score every annotation with the probability that it is wrong.

    Writes item_id, annotator_id, label, label_error_score, is_label_error_issue. With --gold the
    LightGBM error model is trained on the gold items; without, the scores are unsupervised (one minus
    the cross-fitted posterior of the given label) and the command says so. The model's settings are the
    project's train_error_model params (the defaults outside a project).
    """
    from labelcycle.aggregation import METHODS
    from labelcycle.detection import model
    from labelcycle.readers import detect_format, read_table, write_table
    from labelcycle.validation import validate

    if method is not None and method not in METHODS:
        raise ConfigError(
            f"--method {method!r} is not an aggregation method; choose one of {sorted(METHODS)}"
        )
    detect_format(out)  # a bad output extension fails before any work
    here = stage_defaults()
    params = here.params.error_model
    if method is not None:
        params = dataclasses.replace(params, features=dataclasses.replace(params.features, aggregator=method))
    if threshold is not None:
        params = dataclasses.replace(params, threshold=threshold)
    ann = read_table(annotations_file, "annotations", colmap(item_col, annotator_col, label_col))
    items = read_table(items_file, "items", colmap(item_col, None, None)) if items_file else None
    gold = read_table(gold_file, "gold", gold_colmap(gold_item_col, gold_label_col)) if gold_file else None
    labels = here.labels(label_set) or labels_seen(ann, gold)
    if len(labels) < 2:
        raise ConfigError(
            f"{annotations_file}: the label set {labels} has fewer than two classes; pass --labels"
        )
    result = validate(ann, labels, items, gold)
    for name, c in result.counts.items():
        if c.quarantined:
            click.echo(f"  {name}: {c.quarantined} of {c.read} rows set aside ({c.reasons_text()})", err=True)
    result.require_annotations(annotations_file, f"--labels (now {labels})")
    det = model.detect_label_errors(result.annotations, labels, result.items, result.gold, params=params)
    write_table(det.scores, out)
    if not det.supervised:
        click.echo(f"errors: note: {det.message}", err=True)
    n_flag = int(det.scores["is_label_error_issue"].sum())
    held = det.metrics.get("error_model.average_precision")
    click.echo(
        f"errors: {len(det.scores)} annotations scored, {n_flag} flagged (score >= {params.threshold}) "
        f"-> {out}" + (f"; held-out AP on gold {held:.3f}" if held is not None else "")
    )


@click.group()
def review() -> None:
    """The review loop: export the items most worth re-reviewing, import the reviewed labels."""


@review.command("export")
@click.option("--budget", type=int, required=True, help="Number of items to review (> 0).")
@path_option(
    "-o",
    "--out",
    required=True,
    help="Review sheet (CSV/TSV/Parquet/JSONL, or a Label Studio tasks .json). In CSV/TSV, text cells a "
    "spreadsheet would run as a formula get a leading apostrophe.",
)
@click.option(
    "--format",
    "sheet_format",
    type=click.Choice([*review_files.SHEET_FORMATS, review_files.LABEL_STUDIO]),
    default=None,
    help="Sheet format (default: from the extension of -o; .json is label-studio): label-studio writes "
    "Label Studio tasks with the consensus as a prediction.",
)
@path_option(
    "--label-config",
    "config_file",
    default=None,
    help="With label-studio: write the labeling config XML to create the project with here (default: print).",
)
@click.option(
    "--stratify-by",
    default=None,
    help="Share the budget across strata: 'label' (current label) or an item feature column.",
)
@click.option(
    "--by",
    "rank_by",
    type=click.Choice(["priority", "uncertainty", "label_doubt"]),
    default="priority",
    show_default=True,
    help="Ranking: error scores and uncertainty, uncertainty only, or error scores only.",
)
@path_option(
    "--scores",
    "scores_file",
    default=None,
    help=f"Annotation error scores (default: the pipeline's {catalog.ERROR_SCORES}).",
)
@repo_option()
def review_export(budget, out, sheet_format, config_file, stratify_by, rank_by, scores_file, repo) -> None:
    """Pick the BUDGET items most worth re-reviewing (one row per item) into a sheet to fill in.

    Formula-safe: in a CSV or TSV sheet, every text cell (ids, labels, feature values) that starts with
    =, +, -, @, a tab or a carriage return, or with an apostrophe, gets one leading apostrophe, so a
    spreadsheet shows it as text instead of running it. `review import` removes that apostrophe again,
    so ids round-trip exactly. Parquet and JSONL sheets are written as they are. A Label Studio sheet
    (--format label-studio) is a tasks JSON to import into a project made with the printed labeling config.
    """
    from labelcycle.catalog import Catalog
    from labelcycle.detection.review import export_sheet, stratum_columns
    from labelcycle.readers import read_table, write_table
    from labelcycle.spreadsheet import escape_frame
    from labelcycle.versioning.dvc import find_root

    if budget < 1:
        raise ConfigError(f"--budget must be a positive number of items, got {budget}")
    fmt = review_files.export_format(out, sheet_format)
    cat = Catalog(find_root(repo))
    needed = [("annotations", catalog.ANNOTATIONS), ("labels", catalog.LABELS_RAW)]
    if scores_file is None:
        needed.append(("scores", catalog.ERROR_SCORES))
    for name, rel in needed:
        if not cat.exists(rel):
            raise StateError(f"{cat.path(rel)}: missing ({name}); run `dvc repro train_error_model` first")
    scores = (
        read_table(scores_file, "annotations")
        if scores_file
        else pd.read_parquet(cat.path(catalog.ERROR_SCORES))
    )
    items = pd.read_parquet(cat.path(catalog.ITEMS)) if cat.exists(catalog.ITEMS) else None
    known = stratum_columns(items)
    if stratify_by and stratify_by not in known:
        raise ConfigError(f"--stratify-by {stratify_by!r} is not a column; choose one of {known}")
    annotations = pd.read_parquet(cat.path(catalog.ANNOTATIONS))
    sheet = export_sheet(
        scores,
        pd.read_parquet(cat.path(catalog.LABELS_RAW)),
        annotations,
        budget,
        by=rank_by,
        stratify_by=stratify_by or None,
        items=items,
        gold=pd.read_parquet(cat.path(catalog.GOLD)) if cat.exists(catalog.GOLD) else None,
    )
    if fmt == review_files.LABEL_STUDIO:
        review_files.write_label_studio(cat, sheet, items, out, config_file)
        return
    write_table(escape_frame(sheet) if fmt in review_files.SPREADSHEET_FORMATS else sheet, out)
    click.echo(
        f"review export: {len(sheet)} items -> {out}; fill in review_label (and reviewer_id), then "
        f"`labelcycle review import {out}`"
    )


@review.command("import")
@click.argument("batch_file", metavar="BATCH", type=click.Path(path_type=Path))
@click.option(
    "--reviewer",
    default=None,
    help="Reviewer id for rows that leave reviewer_id empty (recorded as reviewer:<id>).",
)
@click.option(
    "--as-gold",
    is_flag=True,
    default=False,
    help="The sheet holds adjudicated labels (e.g. from `labelcycle gold sample`): add them as gold, "
    "one verdict per item, recorded with the origin 'adjudicated'.",
)
@repo_option()
def review_import(batch_file, reviewer, as_gold, repo) -> None:
    """Validate a filled-in review sheet and add its labels as a new raw batch (tracked by DVC).

    Reviewer ids are recorded as reviewer:<id> (e.g. reviewer:alice), so a reviewer never merges with a
    crowd annotator of the same name. The apostrophes `review export` put before formula-like cells of a
    CSV/TSV sheet are removed. Importing the same sheet (same bytes) again is a no-op.

    A Label Studio JSON export (a .json file) is read too: each reviewer's latest completed annotation of
    a task becomes a judgement by reviewer:<email> (reviewer:labelstudio-user-<id> when the export names
    users by id); tasks nobody annotated, skipped annotations and earlier submissions are set aside and
    counted.
    """
    import tempfile

    from labelcycle.readers import ColumnMap
    from labelcycle.versioning import dvc, raw
    from labelcycle.versioning.digest import file_sha256

    root = dvc.find_root(repo)
    sheet_sha256 = file_sha256(batch_file) if batch_file.is_file() else None
    done = sheet_sha256 and raw.find_batch(root, kind="review", sheet_sha256=sheet_sha256)
    if done:
        click.echo(
            f"review import: {batch_file} was already imported as batch {done.digest} "
            f"({done.ingested_at}); nothing to do"
        )
        return
    reviewed, note = review_files.review_judgements(batch_file, root, reviewer)
    if as_gold:
        from labelcycle.cli.gold import import_gold

        import_gold(root, reviewed, note, batch_file, sheet_sha256)
        return
    if reviewed.empty:  # a later export of a Label Studio project whose annotations are all imported
        click.echo(f"review import: nothing new in {batch_file} ({note}); nothing to do")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "annotations.csv"
        reviewed.to_csv(path, index=False)
        origin = {"kind": "review", "sheet": str(batch_file.resolve()), "sheet_sha256": sheet_sha256}
        batch, new = add_raw_batch(
            root,
            [raw.BatchFile("annotations", path, ColumnMap())],
            {"annotations": len(reviewed)},
            "labelcycle review import",
            origin,
        )
    if not new:
        click.echo(f"review import: batch {batch.digest} is already in {catalog.RAW}; nothing to do")
        return
    click.echo(
        f"review import: {len(reviewed)} reviewed labels ({note}) -> batch "
        f"{batch.digest}; run `dvc repro` to see the impact"
    )


@click.command("simulate-review")
@path_option(
    "--demo",
    "demo_dir",
    dir=True,
    default=None,
    help="A folder written by `labelcycle demo` (with truth/); default: generate one in memory.",
)
@click.option("--items", "n_items", type=click.IntRange(min=100), default=6000, show_default=True)
@click.option("--annotators", "n_annotators", type=click.IntRange(min=6), default=80, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--budgets",
    default="0,0.01,0.02,0.05,0.1,0.2",
    show_default=True,
    help="Comma-separated review budgets as fractions of the reviewable items.",
)
@path_option("-o", "--out", "out_dir", dir=True, default=Path(catalog.REVIEW_SIMULATION), show_default=True)
@click.option("--eval-fraction", type=click.FloatRange(0.05, 0.95), default=0.6, show_default=True)
def simulate_review_cmd(demo_dir, n_items, n_annotators, seed, budgets, out_dir, eval_fraction) -> None:
    """On demo data with known truth: wrong labels fixed and downstream accuracy by review budget,
    error-model ranking vs uncertainty only vs random. Writes a CSV and a PNG and logs both to MLflow."""
    from labelcycle.demo import LABELS, generate
    from labelcycle.detection.simulate import SimulationParams, review_curve_figure, simulate_review
    from labelcycle.params import SplitParams
    from labelcycle.readers import read_table
    from labelcycle.split import split_gold
    from labelcycle.tracking.runs import stage_run
    from labelcycle.validation import validate

    try:
        fractions = tuple(float(b) for b in budgets.split(","))
    except ValueError:
        raise ConfigError(f"--budgets {budgets!r}: give comma-separated fractions like 0,0.05,0.1") from None
    if any(not 0 <= b <= 1 for b in fractions):
        raise ConfigError(f"--budgets {budgets!r}: every budget must be a fraction in [0, 1]")
    if demo_dir is not None:
        truth_path = demo_dir / "truth" / "items.parquet"
        if not truth_path.exists():
            raise InputFileError(f"{truth_path}: missing; --demo needs a folder written by `labelcycle demo`")
        v = validate(
            read_table(demo_dir / "annotations.csv", "annotations"),
            list(LABELS),
            read_table(demo_dir / "items.csv", "items"),
            read_table(demo_dir / "gold.csv", "gold"),
        )
        annotations, items, gold = v.annotations, v.items, v.gold
        truth = pd.read_parquet(truth_path)
        source = str(demo_dir)
    else:
        d = generate(n_items=n_items, n_annotators=n_annotators, seed=seed)
        annotations, items, gold, truth = d.annotations, d.items, d.gold, d.truth_items
        source = f"generated demo (items={n_items}, annotators={n_annotators}, seed={seed})"
    eval_gold, gold_train = split_gold(gold, eval_fraction, SplitParams().salt)
    curve, message = simulate_review(
        annotations,
        items,
        gold_train,
        eval_gold,
        truth,
        LABELS,
        SimulationParams(budgets=fractions, seed=seed),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out_dir / "review_simulation.csv", index=False)
    fig = review_curve_figure(curve)
    fig.savefig(out_dir / "review_simulation.png", dpi=110, bbox_inches="tight")
    root = maybe_root() or out_dir.resolve()
    with stage_run(root, "simulate_review", {"source": source, "budgets": budgets, "seed": seed}) as run:
        for strategy, g in curve.groupby("strategy", sort=False):
            for step, row in enumerate(g.itertuples()):
                run.log_metrics(
                    {
                        f"{strategy}.labels_fixed": row.labels_fixed,
                        f"{strategy}.accuracy": row.accuracy,
                        f"{strategy}.macro_f1": row.macro_f1,
                    },
                    step=step,
                )
        run.log_figure(fig, "review_simulation.png")
        run.log_table(curve, "review_simulation.csv")
    click.echo(f"simulate-review: {source}; {message}")
    click.echo(curve.to_string(index=False))
    click.echo(f"-> {out_dir / 'review_simulation.csv'}, {out_dir / 'review_simulation.png'} (and MLflow)")


COMMANDS = [annotators, errors, review, simulate_review_cmd]
