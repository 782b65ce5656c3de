"""The MLflow UI in headless Debian chromium: the runs table lists the versions' parent runs; ticking two and
pressing Compare shows the params that differ and both versions' primary metric."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import mlflow_ui_check  # noqa: E402  (scripts/ is not a package)
from webdriver import find_browser  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.mark.skipif(
    find_browser() is None,
    reason="needs Debian's chromium and chromedriver (apt-get install -y chromium chromium-driver)",
)
def test_compare_of_two_parent_runs_shows_differing_params_and_the_primary_metric(tmp_path):
    assert mlflow_ui_check.main(["--out", str(tmp_path)]) == 0
    for name in ("mlflow_runs.png", "mlflow_compare.png"):
        assert (tmp_path / name).stat().st_size > 10_000
