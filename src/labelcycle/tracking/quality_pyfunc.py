"""Models-from-code entry for the quality model pyfunc (MLflow loads this file; no pickling)."""

from __future__ import annotations

from mlflow.models import set_model

from labelcycle.tracking.models import QualityPyfunc

set_model(QualityPyfunc())
