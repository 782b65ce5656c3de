"""The evidence gates of a promotion: each returns a :class:`Gate` (name, passed, evidence text).

Every gate is a pure function of facts gathered elsewhere, so its outcome on given inputs is exact.
A gate that does not apply (no production release yet to compare with) passes and says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelcycle import catalog
from labelcycle.evaluation.metrics import higher_is_better
from labelcycle.evaluation.paired import PairedComparison

EVAL_DIGEST = "eval-digest"
BASELINE = "beats-baseline"
NON_INFERIORITY = "non-inferiority"
SLICES = "slices"
INGEST = "ingest-validation"
COMMITTED = "data-committed"
REMOTE = "data-in-remote"
MODELS = "models-registered"
ORDER = (EVAL_DIGEST, BASELINE, NON_INFERIORITY, SLICES, INGEST, COMMITTED, REMOTE, MODELS)
#: gates ``--force`` cannot override: a release must name a commit that describes its data and models
UNFORCEABLE = (COMMITTED,)


@dataclass(frozen=True)
class Gate:
    """One gate's outcome.

    Attributes:
        name: the gate (one of :data:`ORDER`).
        passed: whether the candidate clears it (True too when it does not apply).
        evidence: what was measured and against what, in one or two sentences.
        applies: False when there was nothing to judge (e.g. no production release yet).
    """

    name: str
    passed: bool
    evidence: str
    applies: bool = True

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "applies": self.applies, "evidence": self.evidence}


def _f(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:+.4f}"


def eval_digest_gate(
    candidate: str | None, production: str | None, has_production: bool, split_digest: str | None = None
) -> Gate:
    """The candidate was judged on the same frozen eval split as production.

    With no production release, the candidate must still have a recorded eval digest, equal to the
    workspace's eval split digest when that is known (``split_digest``).
    """
    if not candidate:
        return Gate(
            EVAL_DIGEST,
            False,
            "the candidate's evaluation records no eval digest "
            f"({catalog.METRICS} eval_digest); re-run `dvc repro` to evaluate it",
        )
    if split_digest and split_digest != candidate:
        return Gate(
            EVAL_DIGEST,
            False,
            f"the candidate's predictions were made on eval split {candidate} but "
            f"{catalog.EVAL} has digest {split_digest}; re-run `dvc repro`",
        )
    if not has_production:
        return Gate(
            EVAL_DIGEST,
            True,
            f"no production release yet; candidate evaluated on eval split {candidate}"
            + (f" (= {catalog.EVAL})" if split_digest else ""),
        )
    if candidate != production:
        return Gate(
            EVAL_DIGEST,
            False,
            f"candidate eval split {candidate} != production's {production}; "
            "metrics on different eval sets cannot be compared (re-evaluate on the frozen split)",
        )
    return Gate(EVAL_DIGEST, True, f"candidate and production both evaluated on eval split {candidate}")


def baseline_gate(metric: str, candidate: float | None, baseline: float | None) -> Gate:
    """The candidate's primary metric beats the majority-class baseline on the same eval split.

    ``baseline`` is ``reports/metrics.json`` ``baseline.<metric>`` (always answering the most frequent gold
    class; :mod:`labelcycle.evaluation.baseline`). A tie does not beat it. An evaluation written before
    baselines were recorded, or a metric undefined for the baseline (the precision of flagging nobody;
    ``baseline`` None), is not judged: the gate passes and says so.
    """
    if baseline is None or (isinstance(baseline, float) and np.isnan(baseline)):
        return Gate(
            BASELINE,
            True,
            f"{metric}: {catalog.METRICS} records no majority-class baseline for it "
            "(undefined for the baseline, or evaluated before baselines were recorded: then re-run "
            "`dvc repro evaluate` to judge it)",
            applies=False,
        )
    if candidate is None or (isinstance(candidate, float) and np.isnan(candidate)):
        return Gate(
            BASELINE,
            False,
            f"{metric}: the candidate's evaluation records no value ({catalog.METRICS}); "
            "re-run `dvc repro` to evaluate it",
        )
    better = higher_is_better(metric)
    margin = candidate - baseline if better else baseline - candidate
    head = f"{metric} {candidate:.4f} vs majority-class baseline {baseline:.4f} on the eval split" + (
        "" if better else " (lower is better)"
    )
    if margin > 0:
        return Gate(BASELINE, True, f"{head}: beats it by {margin:.4f}")
    return Gate(
        BASELINE,
        False,
        f"{head}: does not beat it (by {margin:+.4f}); the model has learnt nothing usable over always "
        "answering the most frequent class: check the labels and item features, or promote with --force "
        "and a --reason",
    )


def non_inferiority_gate(
    comparison: PairedComparison | None,
    metric: str,
    margin: float,
    candidate_value: float | None = None,
    mismatch: str | None = None,
) -> Gate:
    """Lower end of the paired interval of ``delta = candidate - production`` is above ``-margin``.

    For a loss (lower is better) the rule mirrors: the upper end must be below ``+margin``.
    ``comparison`` None means there is no production release (the gate does not apply);
    ``mismatch`` is the reason a comparison could not be made (the gate fails).
    """
    if mismatch:
        return Gate(NON_INFERIORITY, False, f"{metric}: cannot compare with production: {mismatch}")
    if comparison is None:
        shown = f"; candidate {candidate_value:.4f}" if candidate_value is not None else ""
        return Gate(
            NON_INFERIORITY, True, f"{metric}: no production release to compare with{shown}", applies=False
        )
    row = comparison.row(metric)
    lo, hi, delta = float(row["ci_low"]), float(row["ci_high"]), float(row["delta"])
    pct = int(round(comparison.confidence * 100))
    head = (
        f"{metric} {float(row['candidate']):.4f} vs production {float(row['base']):.4f}: delta {_f(delta)}, "
        f"paired {pct}% interval [{_f(lo)}, {_f(hi)}] over {comparison.n} eval items "
        f"({comparison.n_boot} resamples)"
    )
    if np.isnan(lo) or np.isnan(hi):
        return Gate(NON_INFERIORITY, False, f"{head}; the interval is undefined")
    if higher_is_better(metric):
        ok = lo > -margin
        rule = f"lower end {_f(lo)} {'>' if ok else '<='} -margin {-margin:+.4f}"
    else:
        ok = hi < margin
        rule = f"upper end {_f(hi)} {'<' if ok else '>='} margin {margin:+.4f} (lower is better)"
    return Gate(NON_INFERIORITY, ok, f"{head}; {rule}")


def slices_gate(
    table: pd.DataFrame | None,
    metric: str,
    slice_margin: float,
    min_slice_size: int,
    mismatch: str | None = None,
    no_features: bool = False,
) -> Gate:
    """No slice with at least ``min_slice_size`` eval items loses more than ``slice_margin``.

    ``table`` is :func:`~labelcycle.evaluation.slices.slice_paired` output (already restricted to
    slices of at least ``min_slice_size`` items); a slice regresses when its point ``delta`` of the
    primary metric is below ``-slice_margin`` (above ``+slice_margin`` for a loss). Its paired interval
    is reported as evidence. ``None`` means no production release (the gate does not apply).
    """
    if mismatch:
        return Gate(SLICES, False, f"{metric}: cannot compare slices with production: {mismatch}")
    if table is None:
        why = (
            "no categorical item features to slice by"
            if no_features
            else "no production release to compare with"
        )
        return Gate(SLICES, True, f"{metric}: {why}", applies=False)
    rows = table[(table["metric"] == metric) & (table["n"] >= min_slice_size)]
    if rows.empty:
        return Gate(
            SLICES,
            True,
            f"{metric}: no slice has >= {min_slice_size} eval items; nothing to judge",
            applies=False,
        )
    sign = 1.0 if higher_is_better(metric) else -1.0
    loss = -sign * rows["delta"].astype(float)  # > 0: the candidate is worse on this slice
    bad = rows[loss > slice_margin]

    def fmt(r: pd.Series) -> str:
        return (
            f"{r['slice_column']}={r['slice_value']} (n={int(r['n'])}): {metric} {float(r['base']):.3f} -> "
            f"{float(r['candidate']):.3f}, delta {_f(float(r['delta']))} "
            f"[{_f(float(r['ci_low']))}, {_f(float(r['ci_high']))}]"
        )

    judged = f"{len(rows)} slice(s) with >= {min_slice_size} eval items judged on {metric}"
    if len(bad):
        worst = bad.assign(_loss=loss[bad.index]).sort_values("_loss", ascending=False)
        listed = "; ".join(fmt(r) for _, r in worst.head(5).iterrows())
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        return Gate(
            SLICES,
            False,
            f"{judged}; {len(bad)} regress beyond the slice margin {slice_margin:.3f}: {listed}{more}",
        )
    worst = rows.loc[loss.idxmax()]
    return Gate(SLICES, True, f"{judged}; none loses more than {slice_margin:.3f}; worst {fmt(worst)}")


def ingest_gate(validation_passed: bool | None, source: str = catalog.INGEST_REPORT) -> Gate:
    """The candidate's ingest validation passed (counts reconcile)."""
    if validation_passed is None:
        return Gate(INGEST, False, f"{source}: no validation result recorded; run `dvc repro` (stage ingest)")
    if not validation_passed:
        return Gate(
            INGEST,
            False,
            f"{source}: validation_passed is false (row counts do not reconcile); see {catalog.QUARANTINE}",
        )
    return Gate(INGEST, True, f"{source}: validation_passed is true")


@dataclass(frozen=True)
class CommitFacts:
    """Whether the release's commit describes its data and models.

    Attributes:
        git_rev: the commit (None outside git or before the first commit).
        required: what must be committed and clean: the pipeline's files (``dvc.yaml``, ``dvc.lock``,
            ``params.yaml``, the raw data's ``.dvc`` file), ``stages/``, ``src/`` and every dependency
            ``dvc.lock`` lists that git holds.
        untracked: required paths absent from that commit.
        dirty: required paths whose working copy or index differs from the commit.
        out_of_sync: workspace outputs whose content differs from what ``dvc.lock`` records.
        mismatched: where the commit's params file or code disagrees with its own ``dvc.lock``.
    """

    git_rev: str | None
    required: tuple[str, ...] = (catalog.DVC_YAML, catalog.DVC_LOCK, catalog.PARAMS, catalog.RAW_DVC)
    untracked: tuple[str, ...] = ()
    dirty: tuple[str, ...] = ()
    out_of_sync: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()


def committed_gate(facts: CommitFacts) -> Gate:
    """The commit describes the release: what it needs is committed and clean, its params and code are
    what its ``dvc.lock`` recorded, and the workspace outputs match ``dvc.lock``. ``--force`` cannot
    override this gate."""
    problems = []
    if not facts.git_rev:
        problems.append("the project has no git commit")
    if facts.untracked:
        problems.append(f"not committed: {', '.join(facts.untracked)}")
    if facts.dirty:
        shown = ", ".join(facts.dirty[:8]) + (
            f" (and {len(facts.dirty) - 8} more)" if len(facts.dirty) > 8 else ""
        )
        problems.append(f"uncommitted changes in {shown}")
    if facts.mismatched:
        rev = (facts.git_rev or "?")[:10]
        problems.append(f"commit {rev} disagrees with its {catalog.DVC_LOCK}: {'; '.join(facts.mismatched)}")
    if facts.out_of_sync:
        problems.append(f"workspace differs from {catalog.DVC_LOCK}: {'; '.join(facts.out_of_sync)}")
    if problems:
        return Gate(
            COMMITTED,
            False,
            "; ".join(problems)
            + f"; run `dvc repro`, then `git add {' '.join(facts.dirty[:8] or facts.required)} && git commit` "
            "(--force cannot override this gate)",
        )
    return Gate(
        COMMITTED,
        True,
        f"{', '.join(facts.required)} committed and clean at {facts.git_rev[:10]}; its params and code "
        f"are what its {catalog.DVC_LOCK} recorded; the workspace outputs match {catalog.DVC_LOCK}",
    )


@dataclass(frozen=True)
class RemoteFacts:
    """Where the release's DVC objects are.

    Attributes:
        name: default remote name (the one that would be configured when ``configured`` is False).
        url: its location.
        configured: False when the project has no default remote and the embedded local one will be set up.
        reachable: the remote can be listed (or, unconfigured, its folder can be created).
        total: objects the release needs.
        to_push: objects in the local cache but not in the remote.
        missing: objects in neither (cannot be pushed).
        error: why the remote could not be reached.
    """

    name: str | None
    url: str | None
    configured: bool
    reachable: bool
    total: int = 0
    to_push: int = 0
    missing: tuple[str, ...] = ()
    error: str | None = None


def remote_gate(facts: RemoteFacts) -> Gate:
    """Every object of the release is in the DVC remote, or in the local cache and the remote is reachable."""
    where = f"DVC remote {facts.name!r} ({facts.url})"
    if facts.missing:
        shown = ", ".join(facts.missing[:3])
        return Gate(
            REMOTE,
            False,
            f"{len(facts.missing)} object(s) of the release are neither in the local cache "
            f"nor in {where} (e.g. {shown}); run `dvc repro` or `dvc fetch` where the data exists",
        )
    if not facts.reachable:
        return Gate(
            REMOTE,
            False,
            f"{where} is not reachable ({facts.error or 'unknown error'}); "
            f"{facts.to_push} of {facts.total} object(s) are not known to be there",
        )
    if not facts.configured:
        return Gate(
            REMOTE,
            True,
            f"no default DVC remote configured; the embedded local {where} will be "
            f"configured and {facts.to_push} of {facts.total} object(s) pushed",
        )
    if facts.to_push:
        return Gate(
            REMOTE, True, f"{where} reachable; {facts.to_push} of {facts.total} object(s) will be pushed"
        )
    return Gate(REMOTE, True, f"all {facts.total} object(s) already in {where}")


def models_gate(models: Sequence, registered: Mapping[tuple[str, str], str | None]) -> Gate:
    """Every model of the release is a registered version trained by the run the release names.

    ``registered`` maps ``(name, version)`` to the version's source run id ("" when unknown) or None
    when the version does not exist.
    """
    if not models:
        return Gate(
            MODELS,
            False,
            f"the candidate names no registered model ({catalog.TRAIN_QUALITY_REPORT} "
            "model_version); re-run train_quality with a registered_model name",
        )
    problems, ok = [], []
    for m in models:
        key = (m.name, m.version)
        if key not in registered or registered[key] is None:
            problems.append(f"{m.name} v{m.version} is not in the model registry")
        elif m.run_id and registered[key] and registered[key] != m.run_id:
            problems.append(f"{m.name} v{m.version} was trained by run {registered[key]}, not {m.run_id}")
        else:
            ok.append(f"{m.name} v{m.version} ({m.role})")
    if problems:
        return Gate(MODELS, False, "; ".join(problems))
    return Gate(MODELS, True, "registered: " + ", ".join(ok))
