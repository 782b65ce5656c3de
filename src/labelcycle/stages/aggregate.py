"""Stage aggregate: one label per item (params aggregate.method) -> the raw consensus.

The curate stage refines the consensus with the error model into the curated data set; the annotators
stage does the annotator analytics.

Majority vote and the Dawid-Skene models stream the ingest stage's coded parts
(``data/interim/annotation_codes``, :mod:`labelcycle.aggregation.streaming`), optionally on Dask
(``aggregate.dask``), and start from the previous run's fitted parameters when ``aggregate.warm_start``
is true; the other methods fit in memory on ``data/interim/annotations.parquet``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.aggregation import consensus, incremental, make_aggregator, streaming
from labelcycle.aggregation import fitted as stored
from labelcycle.aggregation.base import ties_to_last
from labelcycle.curation import agreement_summary, curated_labels
from labelcycle.errors import StateError
from labelcycle.pipeline import register_output, stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import digest_of_hashes, row_hashes, table_digest

STAGE = "aggregate"


def main() -> None:
    ctx = stage_context()
    p, labels_set = ctx.params.aggregate, ctx.params.classes
    ordinal, tie_break = ctx.params.ingest.ordinal, ctx.params.ingest.tie_break
    ties = ties_to_last(tie_break, ordinal)
    model = make_aggregator(p.method, classes=labels_set, ties_to_last=ties)
    codes = ctx.path(catalog.ANNOTATION_CODES)
    fit_info: dict[str, object] = {}
    if streaming.streams(model) and (codes / streaming.META).exists():
        source = streaming.ParquetParts(codes)
        if list(source.layout.classes) != list(labels_set):
            raise StateError(
                f"{catalog.ANNOTATION_CODES} was written for the labels {list(source.layout.classes)}, "
                f"not ingest.labels {list(labels_set)}; run the ingest stage again (`dvc repro ingest`)"
            )
        fit, result, fit_info = fit_streaming(ctx, source, model, p)
        # the skills of a Dawid-Skene fit come from its confusions; the others' from the labels
        skills = streaming.skills(source, fit, result.table() if fit.confusions is None else result.frame)
        annotations = streaming.head_rows(source)
        n_rows, ann_digest = source.layout.n_rows, str(source.meta.get("digest", ""))
    else:
        incremental.clear_state(
            register_output(ctx.path(catalog.AGGREGATE_STATE)), f"{p.method} fits in memory, from all rows"
        )
        annotations = ctx.read(catalog.ANNOTATIONS)
        aggregator = model.fit(annotations)
        labels = curated_labels(annotations, aggregator)
        skills = aggregator.skills_
        n_rows = len(annotations)
        ann_digest = table_digest(annotations.drop(columns=[schema.RAW_BATCH], errors="ignore"))
        result = Consensus(labels)
    if result.file is None:  # else the incremental run has written it (the state's file plus the new rows)
        write_parquet(result.frame, ctx.path(catalog.LABELS_RAW))
    summary = result.summary()
    labels_digest = result.digest()
    write_json(
        {"method": p.method, "labels_raw_digest": labels_digest, **fit_info, **summary},
        ctx.path(catalog.AGGREGATE_REPORT),
    )
    with stage_run(
        ctx.root,
        STAGE,
        {
            "aggregate": dataclasses.asdict(p),
            "ingest": {"labels": labels_set, "ordinal": ordinal, "tie_break": tie_break},
        },
    ) as run:
        run.log_dataset(annotations, "annotations", "raw", ann_digest, catalog.ANNOTATIONS, rows=n_rows)
        run.log_dataset(
            result.head(), "labels_raw", "consensus", labels_digest, catalog.LABELS_RAW, rows=result.n_rows
        )
        run.set_tags({"labels_raw_digest": labels_digest, "aggregate.method": p.method})
        run.log_metrics({f"agreement.{k}": v for k, v in summary.items()})
        run.log_metrics({k: float(v) for k, v in fit_info.items() if not isinstance(v, str)})
        run.set_tags({f"aggregate.{k}": v for k, v in fit_info.items() if isinstance(v, str)})
        run.log_table(pd.Series(skills).rename("skill").reset_index(), "annotator_skills.csv")
        # what `labelcycle compare` diffs when a version is named by its MLflow run id (labels: curate run)
        run.log_artifact(ctx.path(catalog.ANNOTATIONS), "curated")
        run.log_dvc_hashes([catalog.ANNOTATIONS], [catalog.LABELS_RAW])
    how = ""
    if fit_info:
        how = f" ({fit_info['fit']} fit: {fit_info['fit_reason']}; {fit_info['em_iterations']} EM steps)"
    print(f"aggregate: {result.n_rows} items labelled by {p.method}{how}; consensus digest {labels_digest}")


def fit_streaming(ctx, source, model, p) -> tuple[streaming.Fitted, Consensus, dict]:
    """The labels of every item by the incremental, warm or cold streaming fit; saves the fit and state.

    Incremental when the coded parts are the stored state's rows plus new raw batches of new items only
    (:func:`incremental.choose`); otherwise the full fit, warm-started from the stored parameters unless
    ``aggregate.warm_start`` is false. The incremental labels are written as a file, straight to
    ``labels_raw``: the stored file's bytes plus the new rows (the next state copies it); its digest comes
    from the state's sorted row hashes plus the new rows' (:mod:`labelcycle.aggregation.consensus`).
    """
    labels_set = list(source.layout.classes)
    state_path = ctx.path(catalog.AGGREGATE_STATE)
    init = warm_start(ctx.path(catalog.AGGREGATE_FIT), p.method, labels_set) if p.warm_start else None
    state = incremental.load_state(state_path) if p.warm_start else None
    choice = incremental.choose(source, model, state, init, p.warm_start)
    labels_raw = ctx.path(catalog.LABELS_RAW)
    appended = labels_raw.with_name(f".{labels_raw.name}.appended")
    try:
        if choice.path == incremental.INCREMENTAL:
            assert state is not None and choice.found is not None and choice.found.new is not None
            fit = incremental.fit(model, state, choice.found.new)
            labels_raw.parent.mkdir(parents=True, exist_ok=True)
            incremental.write_labels(state, choice.found.new, fit, appended)
            result = Consensus(None, labels_raw, _appended_hashes(state, appended))
        else:
            with mapper_for(p.dask) as mapper:
                fit = streaming.fit(source, model, init if choice.path == incremental.WARM else None, mapper)
                labels = streaming.result(source, fit, mapper)
            result = Consensus(labels, None, _frame_hashes(labels))
        stored.save(fit, register_output(ctx.path(catalog.AGGREGATE_FIT)))
        register_output(state_path)
        if fit.stats is not None and source.batches:
            found = choice.found or incremental.scan(source)
            table = result.frame if result.frame is not None else appended
            incremental.save_state(state_path, fit, model, source, found, table, result.hashes)
        else:
            incremental.clear_state(state_path, "the fit keeps no E-step or the rows carry no raw batch")
        if result.file is not None:
            appended.replace(register_output(labels_raw))
    finally:
        appended.unlink(missing_ok=True)
    info = {"fit": choice.path, "fit_reason": choice.reason}
    return fit, result, {"em_iterations": fit.n_iter, "warm_started": fit.warm_started, **info}


def _frame_hashes(labels: pd.DataFrame) -> np.ndarray | None:
    """The sorted row hashes of a result table, where its digest can be taken by parts (else None)."""
    import pyarrow as pa

    if not consensus.hashable_by_row(pa.Schema.from_pandas(labels, preserve_index=False)):
        return None
    return consensus.sorted_row_hashes(labels)


def _appended_hashes(state: incremental.State, appended: Path) -> np.ndarray | None:
    """The sorted row hashes of the appended table: the state's merged with the new rows' (a state that
    keeps none: the whole table's, once; None: a column whose row hash depends on other rows)."""
    import pyarrow.parquet as pq

    if not consensus.hashable_by_row(pq.read_schema(appended)):
        return None
    stored_hashes = None if state.hashes is None else consensus.load_hashes(state.hashes)
    if stored_hashes is None or len(stored_hashes) != state.n_items:
        return consensus.sorted_row_hashes(pd.read_parquet(appended))
    return consensus.merge_sorted(stored_hashes, row_hashes(consensus.rows_from(appended, state.n_items)))


@dataclasses.dataclass
class Consensus:
    """The stage's consensus table, in memory (``frame``) or only as its written file (``file``), with its
    sorted row hashes where known: what the stage writes and logs of it, the same either way."""

    frame: pd.DataFrame | None
    file: Path | None = None
    hashes: np.ndarray | None = None

    def table(self) -> pd.DataFrame:
        return self.frame if self.frame is not None else pd.read_parquet(self.file)

    @property
    def n_rows(self) -> int:
        return len(self.frame) if self.frame is not None else consensus.num_rows(self.file)

    def head(self, n: int = 1000) -> pd.DataFrame:
        return self.frame.head(n) if self.frame is not None else consensus.head(self.file, n)

    def summary(self) -> dict[str, float]:
        return agreement_summary(self.frame) if self.frame is not None else consensus.summary(self.file)

    def digest(self) -> str:
        """:func:`table_digest` of the table (from the row hashes where known)."""
        if self.hashes is None:
            return table_digest(self.table())
        columns = self.head(0).columns
        return digest_of_hashes(columns, self.hashes)


def warm_start(path, method: str, labels_set) -> streaming.Fitted | None:
    """The previous run's parameters when they are for this method and label set, else None (cold fit)."""
    if not path.exists():
        return None
    previous = stored.load(path)
    if previous.method != method or list(previous.classes) != list(labels_set) or previous.confusions is None:
        return None
    return previous


@contextlib.contextmanager
def mapper_for(dask) -> Iterator[Callable]:
    """The serial per-part runner, or one on a Dask cluster when ``aggregate.dask.enabled``."""
    if not dask.enabled:
        yield streaming.serial_map
        return
    from labelcycle.aggregation.dask_em import client_mapper, dask_client

    with dask_client(dask.scheduler) as client:
        yield client_mapper(client)
