"""What a dataset version is made of, read from the project: the facts its parent MLflow run carries.

One ``dvc repro`` / ``dvc exp run`` makes one dataset version. Its facts are the params every stage reads
(:func:`version_params`), its data sets (raw, eval, curated, training sample: full-content digest, rows,
DVC md5), the headline metrics with their intervals and the majority baseline, and a name for people
(:func:`version_name`). A stage's run adds, when it ends, the facts that are current by then: those its own
reports and its upstream stages' reports hold (:func:`current_paths`, from ``dvc.yaml``), since DVC has run
or verified every upstream stage before it starts a stage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labelcycle import catalog
from labelcycle import params as params_mod
from labelcycle.catalog import Catalog, CurateReport, IngestReport, MetricsReport, SampleReport, SplitReport
from labelcycle.errors import InputFileError
from labelcycle.versioning import git
from labelcycle.versioning.digest import DIGEST_LENGTH, file_md5
from labelcycle.versioning.words import describe_changes, flatten, params_at, params_diff

#: at most this many changed params in a version's name (the rest as ``+N more``)
NAME_CHANGES = 3


@dataclass(frozen=True)
class DatasetFact:
    """One data set of a version.

    Attributes:
        name: ``raw``, ``eval``, ``curated`` or ``train_sample``.
        path: its catalog path.
        digest: labelcycle's full-content digest (for ``raw``: of the sorted raw batch digests).
        rows: rows (for ``raw``: annotation rows read from the raw batches).
        dvc_md5: the DVC md5 of the path, when known.
        context: what the version does with it (MLflow dataset context).
    """

    name: str
    path: str
    digest: str
    rows: int | None
    dvc_md5: str | None = None
    context: str = "training"


@dataclass(frozen=True)
class VersionFacts:
    """Facts current at the end of one stage (each part may be empty)."""

    datasets: tuple[DatasetFact, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


# -- the stage graph -----------------------------------------------------------------------------------


def _entries(items: Iterable[Any] | None) -> list[str]:
    out = []
    for item in items or ():
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            out.extend(str(k) for k in item)
    return out


def read_dvc_yaml(root: Path) -> dict[str, Any]:
    """The ``stages`` of the project's ``dvc.yaml`` (empty when absent or unreadable)."""
    path = root / catalog.DVC_YAML
    try:
        data = yaml.safe_load(path.read_text()) if path.exists() else {}
    except yaml.YAMLError:
        return {}
    stages = (data or {}).get("stages") if isinstance(data, dict) else None
    return stages if isinstance(stages, dict) else {}


def _produced(spec: Mapping[str, Any]) -> list[str]:
    return [p for key in ("outs", "metrics", "plots") for p in _entries(spec.get(key))]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def upstream(stages: Mapping[str, Any], stage: str) -> set[str]:
    """``stage`` and every stage whose outputs it depends on, directly or not (empty: unknown stage)."""
    if stage not in stages:
        return set()
    seen, todo = {stage}, [stage]
    while todo:
        deps = _entries((stages[todo.pop()] or {}).get("deps"))
        for other, spec in stages.items():
            if other not in seen and any(_overlaps(d, p) for d in deps for p in _produced(spec or {})):
                seen.add(other)
                todo.append(other)
    return seen


def current_paths(root: Path, stage: str) -> set[str]:
    """The paths ``stage`` and its upstream stages write: current once ``stage`` has run."""
    stages = read_dvc_yaml(root)
    return {p for s in upstream(stages, stage) for p in _produced(stages[s] or {})}


# -- params ----------------------------------------------------------------------------------------------


def _params_keys(stages: Mapping[str, Any]) -> list[str]:
    keys = []
    for spec in stages.values():
        for entry in _entries((spec or {}).get("params")):
            if entry not in keys and not entry.endswith((".yaml", ".yml", ".json", ".toml")):
                keys.append(entry)
    return keys


def version_params(root: Path) -> dict[str, Any]:
    """The params that define the version: every params key a stage of ``dvc.yaml`` reads, flattened,
    with the defaults of :mod:`labelcycle.params` filled in (every section when dvc.yaml lists none)."""
    full = flatten(params_mod.to_dict(params_mod.load(root)))
    keys = _params_keys(read_dvc_yaml(root))
    if not keys:
        return full
    return {k: v for k, v in full.items() if any(k == key or k.startswith(f"{key}.") for key in keys)}


def version_name(root: Path, exp_name: str | None = None) -> str:
    """A name for people: the DVC experiment name, else the short git revision and what changed since it
    (params, new raw data), e.g. ``a1b2c3d aggregate.method=majority_vote``."""
    if exp_name:
        return exp_name
    head = git.head_commit(root)
    if not head:
        return "workspace (no git commit)"
    workspace = (
        flatten(params_mod.read_yaml(root / catalog.PARAMS)) if (root / catalog.PARAMS).exists() else {}
    )
    changes = describe_changes(params_diff(params_at(root, head), workspace), NAME_CHANGES)
    raw_then = git.show_file(root, head, catalog.RAW_DVC)
    raw_now = (root / catalog.RAW_DVC).read_bytes() if (root / catalog.RAW_DVC).exists() else None
    if raw_now is not None and raw_now != raw_then:
        changes = ", ".join(filter(None, [changes, "new raw data"]))
    return f"{head[:7]} {changes}".strip()


# -- data sets and metrics ------------------------------------------------------------------------------


def combined_digest(digests: Iterable[str]) -> str:
    """One digest of a set of digests (order does not matter)."""
    text = "\n".join(sorted(str(d) for d in digests))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def _rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # not a Parquet file (or unreadable): rows unknown
        return None


def _md5(root: Path, rel: str, recorded: Mapping[str, str]) -> str | None:
    p = root / rel
    return file_md5(p) if p.is_file() else recorded.get(rel)


def _report(cat: Catalog, cls: type) -> Any:
    try:
        return cat.report(cls)
    except InputFileError:
        return None


def version_facts(root: Path, stage: str, skip: Iterable[str] = ()) -> VersionFacts:
    """The facts current at the end of ``stage`` (see the module doc).

    Args:
        root: the project.
        stage: the stage that just ran (its name in ``dvc.yaml``).
        skip: data set names already recorded (their digests are not computed again).
    """
    from labelcycle.versioning.dvc import recorded_hashes

    current = current_paths(root, stage)
    cat = Catalog(root)
    skip = set(skip)
    recorded: dict[str, str] | None = None
    datasets: list[DatasetFact] = []
    tags: dict[str, str] = {}

    def md5(rel: str) -> str | None:
        nonlocal recorded
        if recorded is None:
            recorded = recorded_hashes(root)
        return _md5(root, rel, recorded)

    if catalog.INGEST_REPORT in current and "raw" not in skip:
        ingest = _report(cat, IngestReport)
        if ingest is not None and ingest.batches:
            read = (ingest.tables.get("annotations") or {}).get("read")
            datasets.append(
                DatasetFact(
                    "raw",
                    catalog.RAW,
                    combined_digest(ingest.batches),
                    int(read) if read is not None else None,
                    md5(catalog.RAW),
                    "raw",
                )
            )
            tags["raw_batches"] = ",".join(str(b) for b in ingest.batches)[:4000]
    # name, report, its digest field, the data file, its row count (report field or None: count the file), role
    derived = (
        ("eval", SplitReport, "eval_digest", catalog.EVAL, "eval_items", "evaluation"),
        ("curated", CurateReport, "curated_digest", catalog.DATASET, None, "curated"),
        ("train_sample", SampleReport, "sample_digest", catalog.TRAIN_SAMPLE, "items_out", "training"),
    )
    for name, cls, digest_field, path, rows_field, role in derived:
        if cls.PATH not in current or name in skip:
            continue
        report = _report(cat, cls)
        digest = getattr(report, digest_field, None) if report is not None else None
        if digest:
            rows = getattr(report, rows_field) if rows_field else _rows(cat.path(path))
            datasets.append(DatasetFact(name, path, digest, rows, md5(path), role))
    metrics: dict[str, float] = {}
    if catalog.METRICS in current:
        metrics = headline_metrics(cat.read_json(catalog.METRICS) or {})
        if catalog.PREDICTIONS in current and (p := md5(catalog.PREDICTIONS)):
            tags[f"dvc.md5.{catalog.PREDICTIONS}"] = p
    for d in datasets:
        tags[f"{d.name}_digest"] = d.digest
        if d.dvc_md5:
            tags[f"dvc.md5.{d.path}"] = d.dvc_md5
    return VersionFacts(tuple(datasets), metrics, tags)


def headline_metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """From a ``reports/metrics.json`` object: each headline metric, ``<m>_ci_low`` / ``<m>_ci_high``, the
    majority baseline's ``baseline.<m>`` and ``eval_items``."""
    report = MetricsReport.from_dict(data)
    out: dict[str, float] = {}
    for m in catalog.HEADLINE:
        if m in report.values:
            out[m] = report.values[m]
        ci = report.interval(m)
        if ci is not None:
            out[f"{m}_ci_low"], out[f"{m}_ci_high"] = ci
    baseline = data.get("baseline")
    if isinstance(baseline, Mapping):
        out.update(
            {
                f"baseline.{k}": float(v)
                for k, v in baseline.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
    if report.eval_items:
        out["eval_items"] = float(report.eval_items)
    return out
