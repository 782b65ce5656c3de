"""Gather a candidate's and production's facts into the pure :class:`~labelcycle.promotion.plan.Evidence`.

A candidate is the workspace (HEAD, ``dvc.lock``, the reports), a git revision (its committed reports
and ``dvc.lock``; tables from the DVC cache), or an evaluate stage's MLflow run (the commit whose
``dvc.lock`` records that run's outputs). Git is read through :mod:`labelcycle.versioning.git`, DVC through
:mod:`labelcycle.versioning.dvc`, MLflow through :class:`~labelcycle.tracking.registry.Registry`.

The embedded default DVC remote is a local folder beside the project, ``../<project>-dvc-remote``
(:data:`DEFAULT_REMOTE`). When the project has no default remote, promotion configures this one in
``.dvc/config.local`` (machine-local: a folder remote is only reachable from this machine, and the
committed ``.dvc/config`` stays untouched). Set a shared remote with ``dvc remote add -d NAME URL`` and
promotion pushes there instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.catalog import (
    Catalog,
    CurateReport,
    ErrorModelReport,
    IngestReport,
    MetricsReport,
    ModelReport,
    SplitReport,
)
from labelcycle.errors import PromotionRefusedError, WorkspaceError
from labelcycle.features import infer_roles
from labelcycle.params import FeaturesParams, Params
from labelcycle.params import load as load_params
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.execute import Context
from labelcycle.promotion.gates import CommitFacts, RemoteFacts
from labelcycle.promotion.recovery import noted, recover_if_free
from labelcycle.promotion.release import ModelRef, Release
from labelcycle.split import no_evaluation
from labelcycle.tracking.registry import Registry, RunRef
from labelcycle.tracking.runs import TAG_PIPELINE_RUN
from labelcycle.tracking.versions import promotion_source
from labelcycle.versioning import dvc, git
from labelcycle.versioning.digest import table_digest

DEFAULT_REMOTE = "labelcycle-local"
#: the files that describe a release's data and models: each must be in the release's commit
REQUIRED = (catalog.DVC_YAML, catalog.DVC_LOCK, catalog.PARAMS, catalog.RAW_DVC)
#: and, with the code folders, clean in the workspace when the workspace is the candidate
CLEAN = (*REQUIRED, catalog.STAGES_DIR, catalog.SRC_DIR)
#: registered models a release may hold, by role, with the report of the stage that registers each
MODEL_REPORTS: dict[str, type[ModelReport]] = {"quality": ModelReport, "error": ErrorModelReport}


def default_remote_url(root: Path) -> Path:
    """The embedded local DVC remote: ``../<project>-dvc-remote``."""
    return root.parent / f"{root.name}-dvc-remote"


@dataclass(frozen=True)
class Reports:
    """The stage reports a candidate is judged by (None: not written / not committed)."""

    metrics: MetricsReport | None
    models: dict[str, ModelReport]
    ingest: IngestReport | None
    curate: CurateReport | None
    split: SplitReport | None


def read_reports(root: Path, rev: str | None) -> Reports:
    """The reports in the workspace (``rev`` None) or committed at ``rev``."""

    def read(cls):
        if rev is None:
            return Catalog(root).report(cls)
        raw = git.show_file(root, rev, cls.PATH)
        return None if raw is None else catalog.parse_report(cls.PATH, raw, f"{cls.PATH} at {rev[:10]}")

    models = {role: report for role, cls in MODEL_REPORTS.items() if (report := read(cls)) is not None}
    return Reports(read(MetricsReport), models, read(IngestReport), read(CurateReport), read(SplitReport))


@dataclass(frozen=True)
class Candidate:
    """A candidate release and what is judged beside it.

    Attributes:
        release: the release (no id yet).
        predictions: its per-item predictions on the eval split.
        ingest_passed: its ingest validation result.
        split_digest: digest of the eval split it should have been judged on (None when unknown).
        commit: git facts for the data-committed gate.
        rev: the commit whose DVC objects must be in the remote (None: the workspace).
        items: the items table (for slice features; None when unavailable).
    """

    release: Release
    predictions: pd.DataFrame
    ingest_passed: bool | None
    split_digest: str | None
    commit: CommitFacts
    rev: str | None
    items: pd.DataFrame | None


def _models(reports: Reports) -> tuple[ModelRef, ...]:
    """The registered models the training reports name, the quality model first."""
    return tuple(
        ModelRef(role, r.registered_model, r.model_version, r.mlflow_run_id)
        for role, r in sorted(reports.models.items(), key=lambda kv: (kv[0] != "quality", kv[0]))
        if r.registered_model and r.model_version
    )


def _release(
    reports: Reports,
    m: MetricsReport,
    dataset_digest: str,
    rev: str | None,
    hashes: dict[str, str],
    source: str,
    eval_run: RunRef | None,
) -> Release:
    return Release(
        dataset_digest=dataset_digest,
        git_rev=rev,
        dvc_hashes=hashes,
        raw_batches=tuple(str(b) for b in (reports.ingest.batches if reports.ingest else ())),
        eval_digest=m.eval_digest,
        metrics={k: float(m.values[k]) for k in catalog.HEADLINE if k in m.values},
        baseline={
            k: float(v)
            for k, v in m.baseline.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
        intervals=dict(m.ci95),
        models=_models(reports),
        source=source,
        evaluate_run_id=eval_run.run_id if eval_run else None,
        pipeline_run=eval_run.tags.get(TAG_PIPELINE_RUN) if eval_run else None,
        eval_items=m.eval_items or None,
    )


def _committed(path: str, files: set[str]) -> bool:
    """``path`` is a file or folder in the commit's file list, or lies behind a committed symlink."""
    if path in files or any(f.startswith(path.rstrip("/") + "/") for f in files):
        return True
    parts = path.split("/")
    return any("/".join(parts[:i]) in files for i in range(1, len(parts)))


def commit_facts(root: Path, rev: str | None, check_workspace: bool) -> CommitFacts:
    """Facts for the data-committed gate.

    ``rev`` is the release's commit: :data:`REQUIRED` and every dependency its ``dvc.lock`` lists that git
    holds must be in it, and its params file and code must be what its ``dvc.lock`` recorded. With
    ``check_workspace`` (a workspace candidate, ``rev`` = HEAD) those files, ``stages/`` and ``src/``
    must also be clean, and every output in ``dvc.lock`` must have the content it records.
    """
    if not rev:
        return CommitFacts(None, CLEAN)
    deps = dvc.source_deps(root, rev)
    files = set(git.list_files(root, rev))
    untracked = tuple(p for p in (*REQUIRED, *deps) if not _committed(p, files))
    mismatched = dvc.lock_mismatches(root, rev)
    if not check_workspace:
        return CommitFacts(rev, CLEAN, untracked, mismatched=mismatched)
    dirty = git.dirty_paths(root, (*CLEAN, *deps))
    dirty = tuple(p for p in dirty if "__pycache__/" not in p)
    return CommitFacts(rev, CLEAN, untracked, dirty, dvc.out_of_sync(root), mismatched)


def _read_table(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def _cached_table(root: Path, md5: str | None) -> pd.DataFrame | None:
    return _read_table(dvc.cached_file(root, md5)) if md5 else None


def _require_evaluation(metrics: MetricsReport, where: str) -> None:
    """Refuse a candidate that was never judged: its eval split was empty (no gold yet)."""
    if metrics.eval_items == 0:
        raise PromotionRefusedError(f"promotion refused: {where}: {no_evaluation()}; nothing was changed")


def workspace_candidate(registry: Registry, root: Path) -> Candidate:
    """The candidate the workspace holds: HEAD, ``dvc.lock`` and the reports."""
    cat = Catalog(root)
    reports = read_reports(root, None)
    quality = reports.models.get("quality")
    if reports.metrics is None or quality is None:
        missing = catalog.METRICS if reports.metrics is None else catalog.TRAIN_QUALITY_REPORT
        raise WorkspaceError(
            f"{cat.path(missing)}: missing; run `dvc repro` to train and evaluate a candidate before "
            "promoting it"
        )
    _require_evaluation(reports.metrics, str(cat.path(catalog.METRICS)))
    predictions = _read_table(cat.path(catalog.PREDICTIONS))
    if predictions is None:
        raise WorkspaceError(f"{cat.path(catalog.PREDICTIONS)}: missing; run `dvc repro` (stage evaluate)")
    curated = _read_table(cat.path(catalog.DATASET))
    digest = (
        table_digest(curated) if curated is not None else (reports.curate and reports.curate.curated_digest)
    )
    split = _read_table(cat.path(catalog.EVAL))
    rev = git.resolve_rev(root, "HEAD")
    hashes = dvc.recorded_hashes(root)
    eval_run = registry.find_evaluate_run(quality.mlflow_run_id, hashes.get(catalog.PREDICTIONS))
    return Candidate(
        release=_release(reports, reports.metrics, digest or "", rev, hashes, "workspace", eval_run),
        predictions=predictions,
        ingest_passed=reports.ingest.validation_passed if reports.ingest else None,
        split_digest=table_digest(split) if split is not None else None,
        commit=commit_facts(root, rev, check_workspace=True),
        rev=None,
        items=_read_table(cat.path(catalog.ITEMS)),
    )


def commit_candidate(
    registry: Registry, root: Path, rev: str, eval_run: RunRef | None, source: str
) -> Candidate:
    """The candidate committed at ``rev``: its reports and ``dvc.lock``; tables from the DVC cache."""
    reports = read_reports(root, rev)
    quality = reports.models.get("quality")
    if reports.metrics is None or quality is None:
        raise WorkspaceError(
            f"commit {rev[:10]} has no committed {catalog.METRICS} and {catalog.TRAIN_QUALITY_REPORT}; "
            "commit the outputs of `dvc repro` first"
        )
    _require_evaluation(reports.metrics, f"{catalog.METRICS} at commit {rev[:10]}")
    hashes = dvc.recorded_hashes(root, rev)
    predictions = _cached_table(root, hashes.get(catalog.PREDICTIONS))
    if predictions is None and eval_run is not None:
        predictions = registry.read_table(eval_run.run_id, records.PREDICTIONS)
    if predictions is None:
        raise WorkspaceError(
            f"the per-item predictions of commit {rev[:10]} are neither in the DVC cache nor in "
            "MLflow; run `dvc fetch` or re-run `dvc repro` at that commit"
        )
    if eval_run is None:
        eval_run = registry.find_evaluate_run(quality.mlflow_run_id, hashes.get(catalog.PREDICTIONS))
    curated = _cached_table(root, hashes.get(catalog.DATASET))
    digest = (
        table_digest(curated) if curated is not None else (reports.curate and reports.curate.curated_digest)
    )
    items = _cached_table(root, hashes.get(catalog.ITEMS))
    return Candidate(
        release=_release(reports, reports.metrics, digest or "", rev, hashes, source, eval_run),
        predictions=predictions,
        ingest_passed=reports.ingest.validation_passed if reports.ingest else None,
        split_digest=reports.split.eval_digest if reports.split else None,
        commit=commit_facts(root, rev, check_workspace=False),
        rev=rev,
        items=items if items is not None else _read_table(Catalog(root).path(catalog.ITEMS)),
    )


def resolve_candidate(registry: Registry, root: Path, version: str | None) -> Candidate:
    """VERSION in the one grammar of ``compare``, ``status`` and ``experiments``: None or ``workspace``, a git
    revision or tag, a DVC experiment name, or an MLflow run id (a version's parent run or a stage run).

    Raises:
        WorkspaceError: the version has no evaluate run, or no commit records its outputs.
        UnknownVersionError: ``version`` names no version.
    """
    src = promotion_source(root, version)
    if src.rev is None:
        return workspace_candidate(registry, root)
    run = registry.run(src.evaluate_run_id) if src.evaluate_run_id else None
    return commit_candidate(registry, root, src.rev, run, src.source)


def remote_facts(root: Path, rev: str | None) -> RemoteFacts:
    """Where the DVC objects of ``rev`` (None: the workspace) are; the embedded remote when none is set."""
    s = dvc.remote_status(root, rev)
    if s.name is None:
        url = str(default_remote_url(root))
        error = dvc.folder_error(url)
        return RemoteFacts(DEFAULT_REMOTE, url, False, error is None, s.total, s.to_push, s.missing, error)
    return RemoteFacts(s.name, s.url, True, s.error is None, s.total, s.to_push, s.missing, s.error)


def _slice_features(items: pd.DataFrame | None, features: FeaturesParams) -> pd.DataFrame | None:
    """``item_id`` and the categorical item columns (None: there are none); never free text or ids."""
    if items is None:
        return None
    cols = list(infer_roles(items, features).categorical)
    return items[[schema.ITEM_ID, *cols]] if cols else None


def gather_evidence(
    registry: Registry, root: Path, params: Params, version: str | None
) -> tuple[P.Evidence, Candidate]:
    """Everything :func:`~labelcycle.promotion.plan.build_plan` judges, for VERSION against production."""
    cand = resolve_candidate(registry, root, version)
    rid = records.current_release_id(registry, params.train_quality.registered_model)
    prod, prod_preds = (None, None) if rid is None else records.load_release(registry, rid)[:2]
    names = {m.name for m in cand.release.models} | ({m.name for m in prod.models} if prod else set())
    versions = {(m.name, m.version) for m in cand.release.models}
    registered = {
        (m.name, m.version): registry.version_source_run(m.name, m.version) for m in cand.release.models
    }
    tag_keys = set(P.model_version_tags(cand.release.with_id("x")))
    ev = P.Evidence(
        candidate=cand.release,
        production=prod,
        candidate_predictions=cand.predictions,
        production_predictions=prod_preds,
        classes=[str(c) for c in params.classes],
        slice_features=_slice_features(cand.items, params.features),
        ingest_passed=cand.ingest_passed,
        split_digest=cand.split_digest,
        commit=cand.commit,
        remote=remote_facts(root, cand.rev),
        registered=registered,
        state=records.registry_state(registry, root, names, versions, tag_keys),
        next_release_number=records.next_release_number(registry, root),
        positive_labels=list(params.evaluate.positive_labels),
        flag_threshold=params.evaluate.flag_threshold,
    )
    return ev, cand


def plan_promotion(
    root: Path, version: str | None = None, *, force: bool = False, reason: str | None = None
) -> tuple[P.Plan, Context]:
    """The promotion plan for VERSION (default: the workspace), judged on ``evaluate.primary_metric``.

    Changes nothing, except that a plan an interrupted command left is first completed or undone (the
    plan's ``notes`` say which); :func:`~labelcycle.promotion.execute.execute` carries the plan out.
    """
    notes = recover_if_free(root, "labelcycle promote")
    params = load_params(root)
    with noted(notes):
        ev, cand = gather_evidence(Registry(root), root, params, version)
    plan = P.build_plan(
        ev,
        params.promote,
        params.evaluate.primary_metric,
        force=force,
        reason=reason,
        remote_path_note="in .dvc/config.local" if not ev.remote.configured else None,
    )
    return replace(plan, notes=tuple(notes)), Context(root, cand.predictions)
