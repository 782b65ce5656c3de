"""Registered models record the sha256 of their files; loading refuses one whose files changed since
(issue 16, finding 3)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mlflow
import pytest

from labelcycle.errors import TrackingError
from labelcycle.tracking.models import TAG_SHA256, load_model, record_digest

CODE = textwrap.dedent("""
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.models.set_model(Echo())
""")


@pytest.fixture
def registered(tmp_path):
    code = tmp_path / "echo.py"
    code.write_text(CODE)
    client = mlflow.MlflowClient()
    client.create_experiment("integrity", artifact_location=(tmp_path / "store").as_uri())
    mlflow.set_experiment("integrity")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="m", python_model=str(code), registered_model_name="echo")
    version = str(info.registered_model_version)
    digest = record_digest("echo", version)
    return version, digest, tmp_path / "store"


def _stored_code(store: Path) -> Path:
    """The model's code file inside the artifact store (where an unauthenticated PUT would land)."""
    return next(store.rglob("echo.py"))


def test_registration_records_the_sha256_of_the_model_files(registered):
    version, digest, _ = registered
    tags = mlflow.MlflowClient().get_model_version("echo", version).tags
    assert tags[TAG_SHA256] == digest and len(digest) == 64
    assert load_model(f"models:/echo/{version}") is not None


def test_a_registered_model_whose_code_was_replaced_is_refused(registered):
    version, _, store = registered
    _stored_code(store).write_text(CODE + "\nimport os  # replaced\n")
    with pytest.raises(
        TrackingError, match=r"files changed since registration.*refusing to run replaced code"
    ):
        load_model(f"models:/echo/{version}")


def test_a_registered_model_without_a_recorded_sha256_is_refused(registered):
    version, _, _ = registered
    mlflow.MlflowClient().delete_model_version_tag("echo", version, TAG_SHA256)
    with pytest.raises(TrackingError, match=r"records no sha256"):
        load_model(f"models:/echo/{version}")
