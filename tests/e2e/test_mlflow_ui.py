"""The MLflow UI in headless Debian chromium shows two versions' dataset inputs, params and metrics."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_mlflow_compare_page_shows_both_versions(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import mlflow_ui_check

    out = tmp_path / "compare.png"
    assert mlflow_ui_check.main(["--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
