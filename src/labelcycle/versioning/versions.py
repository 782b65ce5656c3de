"""Dataset versions on the DVC/git side: name -> version, a version's artefacts, the versions table.

A version is named by the user as one of:

* ``workspace``: the current working tree of the project;
* a folder holding a project's outputs (its predictions, curated labels, ...);
* a DVC experiment name (``dvc exp run -n NAME`` or the generated name): the experiment's commit;
* a git revision or tag (a release id such as ``dataset/v3`` is one);
* an MLflow run id: the parent run of a version, or any of its stage runs.

MLflow run ids are resolved by :mod:`labelcycle.tracking.versions` (:func:`resolve_version` there is the
one resolver of this grammar, for compare, promote, status and experiments). Artefacts at a git revision are
read through DVC's file system (git-tracked files and DVC-cached outputs alike).
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from labelcycle import catalog
from labelcycle.catalog import Catalog, CurateReport, MetricsReport
from labelcycle.errors import InputFileError, MissingPredictionsError
from labelcycle.versioning.git import git

WORKSPACE = "workspace"

#: what compare reads of a version, by role
ARTEFACTS: dict[str, str] = {
    "labels": catalog.LABELS,
    "annotations": catalog.ANNOTATIONS,
    "predictions": catalog.PREDICTIONS,
    "metrics": catalog.METRICS,
    "params": catalog.PARAMS,
    "items": catalog.ITEMS,
    "train_sample": catalog.TRAIN_SAMPLE,
}
#: params shown by `labelcycle experiments`
KEY_PARAMS = ("aggregate.method", "sample.fraction", "sample.strategy", "train_quality.use_tuned")
#: metrics shown by `labelcycle experiments`
KEY_METRICS = ("accuracy", "macro_f1", "roc_auc_ovr", "log_loss")
#: the columns of the versions table, in display order (those present are shown)
TABLE_COLUMNS = (
    "version",
    "name",
    "release",
    "source",
    "dvc_exp",
    "git_rev",
    "curated_digest",
    "eval_digest",
    *KEY_PARAMS,
    *KEY_METRICS,
)


@dataclass(frozen=True)
class Version:
    """A resolved version.

    Attributes:
        spec: what the user typed.
        kind: ``workspace``, ``folder``, ``dvc_exp``, ``git`` or ``mlflow_run`` (a parent or a stage run).
        rev: the full git commit (git revisions and DVC experiments; for MLflow runs the commit the
            runs were made at, when recorded).
        exp_name: the DVC experiment name, when known.
        pipeline_run: the ``labelcycle.pipeline_run`` tag, when known.
        run_ids: MLflow run id per stage, when known.
        path: the folder read (workspace and folders).
        parent_run: the version's parent MLflow run, when it has one (projects before parent runs have none).
        name: the parent run's name for people (``dataset/v3``, the DVC experiment, ``a1b2c3d key=value``).
    """

    spec: str
    kind: str
    rev: str | None = None
    exp_name: str | None = None
    pipeline_run: str | None = None
    run_ids: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None
    parent_run: str | None = None
    name: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "name": self.name,
            "rev": self.rev,
            "exp_name": self.exp_name,
            "pipeline_run": self.pipeline_run,
            "parent_run": self.parent_run,
            "run_ids": dict(self.run_ids),
            "path": str(self.path) if self.path else None,
        }


@dataclass
class VersionData:
    """The artefacts of one version that compare reads (None where the version lacks one)."""

    version: Version
    labels: pd.DataFrame | None = None
    annotations: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    train_sample: pd.DataFrame | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def require_predictions(self, role: str) -> pd.DataFrame:
        """The saved per-item predictions on the gold eval split.

        Args:
            role: ``base`` or ``candidate`` (named in the message).

        Raises:
            MissingPredictionsError: the version has none; the message says where they were looked for.
        """
        if self.predictions is not None:
            return self.predictions
        v = self.version
        if v.kind == "mlflow_run":
            where = "its pipeline run has no evaluate-stage run with predictions.parquet"
        elif v.path is not None:
            where = f"{v.path / catalog.PREDICTIONS} is missing"
        else:
            where = f"{catalog.PREDICTIONS} is not at revision {str(v.rev)[:10]} (nor in the local DVC cache)"
        raise MissingPredictionsError(
            f"{role} version {v.spec!r} ({v.kind}) has no saved predictions: {where}; run the pipeline "
            "through its evaluate stage for that version (`dvc repro` / `dvc exp run`), or pick another "
            "version from `labelcycle experiments`"
        )

    @property
    def aggregation_method(self) -> str | None:
        """The version's ``aggregate.method`` param, when recorded."""
        agg = self.params.get("aggregate") or {}
        return str(agg.get("method")) if isinstance(agg, dict) and agg.get("method") else None


def experiment_refs(root: Path) -> dict[str, str]:
    """DVC experiment name -> commit, from the ``refs/exps/<baseline>/<name>`` refs git holds."""
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps/")
    refs: dict[str, str] = {}
    for line in (out or "").splitlines():
        ref, _, sha = line.partition(" ")
        parts = ref.split("/")
        if len(parts) == 5 and parts[2] not in ("exec", "celery", "temp", "runs", "stash"):
            refs[parts[4]] = sha
    return refs


def experiment_baseline(root: Path, name: str) -> str | None:
    """The baseline commit of a DVC experiment (from its ref path)."""
    out = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/")
    for ref in (out or "").splitlines():
        parts = ref.split("/")
        if len(parts) == 5 and parts[4] == name:
            return parts[2] + parts[3]
    return None


def resolve_local(root: Path, spec: str) -> Version | None:
    """Resolve ``workspace``, a folder, a DVC experiment name or a git revision; None when none fits."""
    if spec == WORKSPACE:
        return Version(spec=spec, kind="workspace", rev=git(root, "rev-parse", "HEAD"), path=root)
    folder = Path(spec)
    if folder.is_dir() and any(
        (folder / rel).exists() for rel in (ARTEFACTS["predictions"], ARTEFACTS["labels"])
    ):
        return Version(spec=spec, kind="folder", path=folder.resolve())
    exps = experiment_refs(root)
    if spec in exps:
        return Version(spec=spec, kind="dvc_exp", rev=exps[spec], exp_name=spec)
    rev = git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if rev:
        return Version(spec=spec, kind="git", rev=rev)
    return None


def _parse(role: str, raw: bytes) -> Any:
    if role == "metrics":
        return json.loads(raw.decode())
    if role == "params":
        return yaml.safe_load(raw.decode()) or {}
    return pd.read_parquet(io.BytesIO(raw))


def load_local(root: Path, version: Version, roles: tuple[str, ...] = tuple(ARTEFACTS)) -> VersionData:
    """Read a local version's artefacts (missing ones stay None / empty)."""
    found: dict[str, Any] = {}
    if version.path is not None:
        for role in roles:
            p = version.path / ARTEFACTS[role]
            if p.is_file():
                found[role] = _parse(role, p.read_bytes())
    else:
        found = _read_at_rev(root, version.rev or version.spec, roles)
    return VersionData(
        version=version,
        labels=found.get("labels"),
        annotations=found.get("annotations"),
        predictions=found.get("predictions"),
        items=found.get("items"),
        train_sample=found.get("train_sample"),
        metrics=found.get("metrics") or {},
        params=found.get("params") or {},
    )


def _read_at_rev(root: Path, rev: str, roles: tuple[str, ...]) -> dict[str, Any]:
    """Artefacts at a git revision: git-tracked files via git, DVC outputs via DVC's file system."""
    found: dict[str, Any] = {}
    pending = []
    for role in roles:
        try:
            out = subprocess.run(
                ["git", "show", f"{rev}:{ARTEFACTS[role]}"],
                cwd=root,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and not out.stdout.startswith(b"version https://git-lfs"):
            found[role] = _parse(role, out.stdout)
        else:
            pending.append(role)
    if pending:
        from dvc.api import DVCFileSystem

        try:
            fs = DVCFileSystem(str(root), rev=rev, subrepos=False)
        except Exception:  # not a DVC project at that revision: nothing more to read
            return found
        for role in pending:
            try:
                if fs.exists(ARTEFACTS[role]):
                    found[role] = _parse(role, fs.read_bytes(ARTEFACTS[role]))
            except Exception:  # output not in the local cache (never pulled): treated as absent
                continue
    return found


def predictions_md5(root: Path, version: Version) -> str | None:
    """DVC md5 of the version's ``reports/predictions.parquet`` (what its evaluate run tagged), if known."""
    rel = ARTEFACTS["predictions"]
    if version.path is not None:
        from labelcycle.versioning.digest import file_md5

        p = version.path / rel
        return file_md5(p) if p.is_file() else None
    if not version.rev:
        return None
    text = git(root, "show", f"{version.rev}:{catalog.DVC_LOCK}")
    if not text:
        return None
    lock = yaml.safe_load(text) or {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []) or []:
            if out.get("path") == rel and out.get("md5"):
                return str(out["md5"])
    return None


# -- the versions table (`labelcycle experiments`) -------------------------------------------------


def _report_at(root: Path, rev: str, cls: type) -> Any:
    """The typed report ``cls`` committed at ``rev``; None when absent or unreadable."""
    text = git(root, "show", f"{rev}:{cls.PATH}")
    if not text:
        return None
    try:
        return catalog.parse_report(cls.PATH, text, f"{rev[:10]}:{cls.PATH}")
    except InputFileError:
        return None


def _params_text(text: str | None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _version_row(
    name: str,
    source: str,
    rev: str | None,
    params: Mapping[str, Any],
    metrics: MetricsReport | None,
    curate: CurateReport | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "version": name,
        "name": name if source == "dvc" else "",
        "release": "",
        "source": source,
        "dvc_exp": name if source == "dvc" else "",
        "git_rev": (rev or "")[:10],
        "curated_digest": ((curate.curated_digest if curate else None) or "")[:12],
        "eval_digest": ((metrics.eval_digest if metrics else None) or "")[:12],
    }
    for k in KEY_PARAMS:
        section, _, key = k.partition(".")
        values = params.get(section)
        row[k] = str(values.get(key, "")) if isinstance(values, dict) else ""
    for k in KEY_METRICS:
        row[k] = metrics.values.get(k) if metrics else None
    return row


def versions_table(root: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Every version of the project, one row each: what ``labelcycle experiments`` lists.

    Args:
        root: the project.
        runs: the MLflow pipeline runs (:func:`labelcycle.tracking.versions.pipeline_versions`; empty
            when the tracking store is out of reach). A DVC experiment that has one is marked
            ``mlflow+dvc``; the others get a row of their own (``dvc``) from their committed params and
            reports, and the workspace one (``workspace``) when it holds an evaluation.

    Returns:
        The rows: ``version, source, dvc_exp, git_rev, curated_digest, eval_digest``, the
        :data:`KEY_PARAMS` and the :data:`KEY_METRICS` (the curated digest is the curate stage's).
    """
    table = runs.copy()
    rows = []
    for name, sha in experiment_refs(root).items():
        hit = table[table["dvc_exp"] == name] if len(table) else table
        if len(hit):
            table.loc[hit.index, "source"] = "mlflow+dvc"
            continue
        params = _params_text(git(root, "show", f"{sha}:{catalog.PARAMS}"))
        rows.append(
            _version_row(
                name,
                "dvc",
                sha,
                params,
                _report_at(root, sha, MetricsReport),
                _report_at(root, sha, CurateReport),
            )
        )
    cat = Catalog(root)
    if cat.exists(catalog.METRICS):
        params = _params_text(cat.path(catalog.PARAMS).read_text()) if cat.exists(catalog.PARAMS) else {}
        rows.append(
            _version_row(
                WORKSPACE,
                "workspace",
                git(root, "rev-parse", "HEAD"),
                params,
                cat.report(MetricsReport),
                cat.report(CurateReport),
            )
        )
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True) if rows else table


def select_rows(table: pd.DataFrame, versions: Sequence[Version]) -> pd.DataFrame:
    """The rows of the versions table that are ``versions`` (resolved, and linked to their runs where they
    have any): by run id, parent run, pipeline run, DVC experiment, the workspace, else the git commit."""
    if not len(table):
        return table

    def col(name: str) -> pd.Series:
        return (
            table[name].fillna("").astype(str) if name in table.columns else pd.Series("", index=table.index)
        )

    keep = pd.Series(False, index=table.index)
    for v in versions:
        hit = col("version") == v.spec
        for value, name in (
            (v.parent_run, "parent_run"),
            (v.pipeline_run, "pipeline_run"),
            (v.exp_name, "dvc_exp"),
        ):
            if value:
                hit |= col(name) == value
        if v.kind == "workspace":
            hit |= col("source") == "workspace"
        if not hit.any() and v.rev:
            hit = col("git_rev") == v.rev[:10]
        keep |= hit
    return table[keep]


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The versions table with the columns worth printing (:data:`TABLE_COLUMNS`), in that order."""
    return table[[c for c in TABLE_COLUMNS if c in table.columns]] if len(table) else table
