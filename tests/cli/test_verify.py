"""Raw batches are verified against their manifests: `labelcycle verify`, and every ingest-stage run."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from tests.conftest import run_cli, sh

from labelcycle import catalog

GOOD = "item_id,annotator_id,label\n" + "".join(f"i{k},a{k % 3},ok\n" for k in range(2000))


def _ingest(project: Path, name: str, text: str) -> Path:
    (project / name).write_text(text)
    res = run_cli(project, "ingest", "--annotations", name)
    assert res.returncode == 0, res.stderr
    return next(p for p in (project / catalog.RAW).iterdir() if (p / "annotations.csv").read_text() == text)


def _flip_labels(batch: Path) -> None:
    """Edit a batch in place, as the issue did (labels flipped; the file made writable first)."""
    path = batch / "annotations.csv"
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(path.read_text().replace(",ok\n", ",prohibited\n"))


def test_verify_exits_0_when_every_batch_matches_its_manifest(project):
    _ingest(project, "a.csv", GOOD)
    _ingest(project, "b.csv", GOOD.replace("a1", "z1"))
    res = run_cli(project, "verify")
    assert res.returncode == 0, res.stderr
    assert "verify: 2 raw batches (2 files) match their manifests" in res.stdout


def test_verify_lists_the_tampered_batch_and_file_and_says_what_to_do(project):
    clean = _ingest(project, "a.csv", GOOD)
    tampered = _ingest(project, "b.csv", GOOD.replace("a1", "z1"))
    _flip_labels(tampered)
    res = run_cli(project, "verify")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"{catalog.RAW}/{tampered.name}/annotations.csv: changed since it was ingested" in res.stdout
    assert clean.name not in res.stdout
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: 1 of 2 raw batches differ from their manifests") and "dvc checkout" in line


def test_the_ingest_stage_refuses_a_tampered_batch_in_one_error_line_naming_it(project):
    batch = _ingest(project, "a.csv", GOOD)
    _flip_labels(batch)
    res = sh(project, sys.executable, "stages/ingest.py", check=False)  # what `dvc repro ingest` runs
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()  # MLflow may log a line or two before the stage starts
    (line,) = [x for x in lines if x.startswith("error:")]
    assert line == lines[-1]
    assert line.startswith(
        f"error: {catalog.RAW}/{batch.name}/annotations.csv: changed since it was ingested"
    )
    assert "dvc checkout" in line
    assert not (project / catalog.ANNOTATIONS).exists()


def test_verify_outside_a_project_says_what_to_do(tmp_path):
    res = run_cli(tmp_path, "verify")
    assert res.returncode == 1 and "not inside a DVC project" in res.stderr
