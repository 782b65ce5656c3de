"""Quality model as an MLflow pyfunc: log with signature and explicit requirements, register, load.

The pyfunc wraps the same folder that :class:`labelcycle.quality.model.QualityModel` saves (booster and
fitted feature pipeline, text vocabularies included), so ``models:/<name>@<alias>`` serves exactly what the
workspace model predicts from raw items: a frame with ``label`` and one ``proba_<class>`` column per class.
Its signature names the raw item columns: text columns as strings, numeric columns as numbers.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import labelcycle
from labelcycle import schema
from labelcycle.errors import LabelcycleError, TrackingError
from labelcycle.masking import mask
from labelcycle.quality.model import QualityModel

try:
    import mlflow.pyfunc

    _Base: Any = mlflow.pyfunc.PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency
    _Base = object


class QualityPyfunc(_Base):  # type: ignore[misc]
    """MLflow pyfunc around a saved :class:`QualityModel` folder."""

    def load_context(self, context: Any) -> None:
        self.model = QualityModel.load(Path(context.artifacts["model_dir"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = model_input.copy()
        if schema.ITEM_ID not in frame.columns:
            frame[schema.ITEM_ID] = [str(i) for i in range(len(frame))]
        return self.model.predict(frame).drop(columns=[schema.ITEM_ID])


def _requirements() -> list[str]:
    pins = []
    for dist in ("lightgbm", "pandas", "numpy", "pyarrow", "scikit-learn", "mlflow"):
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def log_quality_model(model_dir: Path, sample_items: pd.DataFrame, registered_name: str | None) -> Any:
    """Log the model folder as a pyfunc in the active run (and register it); returns ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    model = QualityModel.load(model_dir)
    roles = model.pipeline.roles_
    features = sample_items[[schema.ITEM_ID, *model.pipeline.input_columns]].head(50).copy()
    numeric = [*roles.numeric, *(c for e in roles.embedding if not e.is_list for c in e.columns)]
    for col in numeric:
        # integer-valued columns without gaps are served as long (what a CSV reader yields), others as
        # double; MLflow refuses to cast int64 to float64 itself
        values = pd.to_numeric(sample_items[col], errors="coerce")
        integral = values.notna().all() and bool((values == values.round()).all())
        features[col] = features[col].astype("int64" if integral else "float64")
    for col in (*roles.categorical, *roles.text):
        features[col] = features[col].astype(object).where(features[col].notna(), "").astype(str)
    output = model.predict(features).drop(columns=[schema.ITEM_ID])
    import warnings

    with warnings.catch_warnings():  # integer columns are typed long on purpose (see above)
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(features, output)
    info = mlflow.pyfunc.log_model(
        name="quality_model",
        python_model=str(Path(__file__).with_name("quality_pyfunc.py")),
        artifacts={"model_dir": str(model_dir)},
        code_paths=[str(Path(labelcycle.__file__).parent)],
        pip_requirements=_requirements(),
        signature=signature,
        input_example=features.head(5),
        registered_model_name=registered_name,
    )
    version = getattr(info, "registered_model_version", None)
    if registered_name and version:
        record_digest(registered_name, str(version))
    return info


#: model version tag holding the sha256 of the registered model's files (code and artifacts)
TAG_SHA256 = "labelcycle.sha256"
#: written by MLflow into every download of a registered model (its name and version), not a model file
_DOWNLOAD_META = "registered_model_meta"


def tree_sha256(folder: Path) -> str:
    """sha256 over every file under ``folder`` (MLflow's download metadata aside): relative paths and
    contents, in path order."""
    import hashlib

    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != _DOWNLOAD_META):
        total.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                total.update(hashlib.sha256(chunk).digest())
        total.update(b"\1")
    return total.hexdigest()


def _download(uri: str) -> Path:
    """The model's files as the store holds them, in a fresh folder removed when this process exits."""
    import atexit
    import shutil
    import tempfile

    import mlflow

    dst = Path(tempfile.mkdtemp(prefix="labelcycle-model-"))
    atexit.register(shutil.rmtree, dst, True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))


def record_digest(name: str, version: str) -> str:
    """Tag a registered model version with the sha256 of its files as stored (:data:`TAG_SHA256`)."""
    import mlflow

    digest = tree_sha256(_download(f"models:/{name}/{version}"))
    mlflow.MlflowClient().set_model_version_tag(name, version, TAG_SHA256, digest)
    return digest


def _registered_version(uri: str) -> Any | None:
    """The model version a ``models:/name/<version>`` or ``models:/name@alias`` URI names, else None."""
    import mlflow

    if not uri.startswith("models:/"):
        return None
    ref = uri[len("models:/") :].rstrip("/")
    client = mlflow.MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, _, version = ref.rpartition("/")
    if name and version.isdigit():
        return client.get_model_version(name, version)
    return None


def load_model(uri: str) -> Any:
    """Load a pyfunc model from any MLflow URI (``models:/name@alias``, ``runs:/...``).

    A registered version is loaded from a verified local copy: its files must hash to the sha256 recorded
    at registration, so code replaced in the artifact store since is never run.

    Raises:
        TrackingError: the model cannot be found or loaded, records no sha256, or its files changed.
    """
    import mlflow

    try:
        version = _registered_version(uri)
        local = _download(uri) if version is not None else None
    except Exception as exc:
        raise TrackingError(
            f"cannot load the model {uri!r} ({type(exc).__name__}: {mask(str(exc))[:300]}); check the name, "
            "version or alias in the MLflow UI and that MLFLOW_TRACKING_URI points at the right store"
        ) from exc
    if version is not None and local is not None:
        recorded = (version.tags or {}).get(TAG_SHA256)
        where = f"model {uri!r} (version {version.version} of {version.name})"
        if not recorded:
            raise TrackingError(
                f"{where} records no sha256 of its files, so labelcycle cannot tell whether they were replaced; "
                "register it again with `dvc repro train_quality` (or `dvc repro -f train_quality`)"
            )
        actual = tree_sha256(local)
        if actual != recorded:
            raise TrackingError(
                f"{where}: its files changed since registration (sha256 {actual[:12]}... now, {recorded[:12]}... "
                "recorded); refusing to run replaced code. Check who can write to the tracking server's "
                "artifacts (turn on `labelcycle server` auth) and register the model again"
            )
        uri = str(local)
    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise TrackingError(
            f"cannot load the model {uri!r} ({type(exc).__name__}: {mask(str(exc))[:300]}); check the "
            "name, version or alias in the MLflow UI and that MLFLOW_TRACKING_URI points at the right store"
        ) from exc


def _conform(items: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Cast numeric columns to the model signature's types where that loses nothing."""
    schema_in = model.metadata.get_input_schema() if model.metadata else None
    if schema_in is None or not schema_in.has_input_names():
        return items
    items = items.copy()
    for spec in schema_in.inputs:
        name, kind = spec.name, str(getattr(spec.type, "name", spec.type))
        if name not in items.columns:
            continue
        col = items[name]
        if (
            kind == "long"
            and pd.api.types.is_float_dtype(col)
            and col.notna().all()
            and (col == col.round()).all()
        ):
            items[name] = col.astype("int64")
        elif kind == "double" and pd.api.types.is_integer_dtype(col):
            items[name] = col.astype("float64")
        elif kind == "string":
            items[name] = col.astype(object).where(col.notna(), "").astype(str)
    return items


def predict_with(uri: str, items: pd.DataFrame) -> pd.DataFrame:
    """``item_id, label, proba_<class>...`` from an MLflow model URI."""
    model = load_model(uri)
    items = _conform(items, model)
    try:
        out = model.predict(items)
    except Exception as exc:
        raise LabelcycleError(f"model {uri} could not score the items: {str(exc)[:300]}") from exc
    out = pd.DataFrame(out).reset_index(drop=True)
    out.insert(0, schema.ITEM_ID, items[schema.ITEM_ID].astype(str).to_numpy())
    return out
