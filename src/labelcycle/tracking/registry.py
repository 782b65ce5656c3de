"""The MLflow side of promotion: registry aliases and model-version tags, stage runs, and the records.

A release is recorded in MLflow as a registry alias on each of its model versions, tags on those
versions, and a *release record*: a run in the experiment :data:`RECORDS_EXPERIMENT` holding its
manifest and per-item predictions. Every promotion and rollback also writes an *audit record* there.
:class:`Registry` is the only way promotion reads or writes any of it; runs come back as :class:`RunRef`
so no MLflow object leaves this module.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import catalog
from labelcycle.errors import TrackingError
from labelcycle.tracking.runs import TAG_STAGE, configure, tracking_uri

RECORDS_EXPERIMENT = "labelcycle-releases"
#: the kind of a record run (``release`` or ``audit``)
TAG_KIND = "labelcycle.kind"
#: tag of an evaluate stage run naming the run that trained the quality model it judged
TAG_EVALUATED_RUN = "quality_model.run_id"
#: prefix of the tags a stage run records its DVC outputs' md5 under (``dvc.out.<path>``)
TAG_DVC_OUT = "dvc.out."
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class RunRef:
    """An MLflow run as promotion sees it: its id and its tags."""

    run_id: str
    tags: Mapping[str, str]


def _ref(run: Any) -> RunRef:
    return RunRef(run.info.run_id, dict(run.data.tags))


class Registry:
    """MLflow access for one project: its tracking store (``MLFLOW_TRACKING_URI`` or ``mlflow.db``).

    Args:
        root: the project root.

    Raises:
        TrackingError: the tracking store cannot be reached.
    """

    def __init__(self, root: Path) -> None:
        import mlflow

        configure(root)
        self.root = root
        self.client = mlflow.MlflowClient()

    # -- the model registry ------------------------------------------------------------------------

    def alias(self, name: str, alias: str) -> str | None:
        """The version ``name@alias`` points at (None: no such model or alias)."""
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except Exception:
            return None

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """The tags of model version ``name`` v``version`` (empty when it does not exist)."""
        try:
            return dict(self.client.get_model_version(name, version).tags)
        except Exception:
            return {}

    def version_source_run(self, name: str, version: str) -> str | None:
        """The run that created model version ``name`` v``version`` ("" unknown; None: no such version)."""
        try:
            return self.client.get_model_version(name, version).run_id or ""
        except Exception:
            return None

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str | None]) -> None:
        """Set each tag on model version ``name`` v``version``; a None value deletes the tag."""
        for key, value in tags.items():
            if value is None:
                self.client.delete_model_version_tag(name, version, key)
            else:
                self.client.set_model_version_tag(name, version, key, value)

    def set_alias(self, name: str, alias: str, version: str | None) -> None:
        """Point ``name@alias`` at ``version``; None removes the alias."""
        if version is None:
            self.client.delete_registered_model_alias(name, alias)
        else:
            self.client.set_registered_model_alias(name, alias, version)

    # -- runs ----------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRef | None:
        """The run with this id (None when ``run_id`` is not a run id or no such run exists)."""
        if not RUN_ID.match(run_id):
            return None
        try:
            return _ref(self.client.get_run(run_id))
        except Exception:
            return None

    def find_evaluate_run(self, quality_run: str | None, predictions_md5: str | None) -> RunRef | None:
        """The newest evaluate stage run that judged ``quality_run``'s model, preferring the one whose
        per-item predictions have ``predictions_md5``."""
        if not quality_run:
            return None
        try:
            runs = self.client.search_runs(
                [e.experiment_id for e in self.client.search_experiments()],
                filter_string=(
                    f"tags.`{TAG_STAGE}` = 'evaluate' and tags.`{TAG_EVALUATED_RUN}` = '{quality_run}'"
                ),
                order_by=["attributes.start_time DESC"],
                max_results=50,
            )
        except Exception:
            return None
        wanted = TAG_DVC_OUT + catalog.PREDICTIONS
        for run in runs:
            if not predictions_md5 or run.data.tags.get(wanted) == predictions_md5:
                return _ref(run)
        return _ref(runs[0]) if runs else None

    def read_json(self, run_id: str, artifact: str) -> dict[str, Any]:
        """A JSON artifact of a run.

        Raises:
            TrackingError: the artifact cannot be downloaded or parsed.
        """
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(run_id, artifact, tmp)
                return json.loads(Path(path).read_text())
            except Exception as exc:
                raise TrackingError(
                    f"cannot read {artifact} of MLflow run {run_id}: {exc}; check the run's artifacts "
                    f"at {tracking_uri(self.root)}"
                ) from exc

    def read_table(self, run_id: str, artifact: str) -> pd.DataFrame | None:
        """A parquet artifact of a run (None when it cannot be read)."""
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return pd.read_parquet(self.client.download_artifacts(run_id, artifact, tmp))
            except Exception:
                return None

    def tag_run(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def untag_run(self, run_id: str, key: str) -> None:
        """Remove tag ``key`` from a run (nothing when it does not carry it)."""
        if key in (self.run(run_id) or RunRef(run_id, {})).tags:
            self.client.delete_tag(run_id, key)

    def delete_run(self, run_id: str) -> None:
        """Delete a run (MLflow keeps it, marked deleted, out of every search)."""
        self.client.delete_run(run_id)

    # -- release and audit records ------------------------------------------------------------------

    def _records_experiment(self, create: bool) -> str | None:
        exp = self.client.get_experiment_by_name(RECORDS_EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        if not create:
            return None
        uri = tracking_uri(self.root)
        location = None
        if uri.startswith("sqlite:") or "://" not in uri:
            location = (self.root / catalog.MLARTIFACTS).resolve().as_uri()
        return self.client.create_experiment(RECORDS_EXPERIMENT, artifact_location=location)

    def records(self, kind: str, include_deleted: bool = False) -> list[RunRef]:
        """Every record run of ``kind`` (``release``, ``audit``), newest first; deleted ones too on request."""
        return self.search_records(f"tags.`{TAG_KIND}` = '{kind}'", include_deleted)

    def records_tagged(self, key: str, value: str) -> list[RunRef]:
        """Every run in the records experiment with tag ``key`` = ``value``, whole records or not.

        A record is whole once it carries its :data:`TAG_KIND` tag (:meth:`write_record` sets it last).
        """
        return self.search_records(f"tags.`{key}` = '{value}'")

    def search_records(self, filter_string: str, include_deleted: bool = False) -> list[RunRef]:
        """Runs in the records experiment matching an MLflow ``filter_string``, newest first."""
        from mlflow.entities import ViewType

        exp = self._records_experiment(create=False)
        if exp is None:
            return []
        runs = self.client.search_runs(
            [exp],
            filter_string=filter_string,
            run_view_type=ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY,
            max_results=5000,
            order_by=["attributes.start_time DESC"],
        )
        return [_ref(r) for r in runs]

    def write_record(
        self,
        kind: str,
        tags: Mapping[str, str],
        files: Mapping[str, Any],
        metrics: Mapping[str, float | None] | None = None,
        run_name: str | None = None,
    ) -> str:
        """Write a finished record run of ``kind``; returns its run id.

        The run gets its :data:`TAG_KIND` tag last, once its files, metrics and other tags are written,
        so :meth:`records` never returns a record that was cut short.

        Args:
            kind: ``release`` or ``audit`` (the :data:`TAG_KIND` tag).
            tags: run tags.
            files: artifact name -> content (a DataFrame is written as parquet, anything else as JSON).
            metrics: logged as run metrics (None and NaN values are skipped).
            run_name: the run's name for people.
        """
        exp = self._records_experiment(create=True)
        run = self.client.create_run(exp, tags={k: str(v) for k, v in tags.items()}, run_name=run_name)
        rid = run.info.run_id
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                path = Path(tmp) / name
                if isinstance(content, pd.DataFrame):
                    content.to_parquet(path, index=False)
                else:
                    path.write_text(json.dumps(content, indent=2, sort_keys=True, default=str) + "\n")
                self.client.log_artifact(rid, str(path))
        for key, value in (metrics or {}).items():
            if value is not None and pd.notna(value):
                self.client.log_metric(rid, key, float(value))
        self.client.set_terminated(rid)
        self.client.set_tag(rid, TAG_KIND, kind)
        return rid
