"""What `labelcycle init` writes is this repository's own pipeline, made from the installed package: the
stage files from one template, dvc.yaml less the deps under src/, params.yaml with ``ingest.labels: []``."""

from __future__ import annotations

from pathlib import Path

import yaml

from labelcycle import catalog
from labelcycle.project import STAGE_FILE, project_files, template_text

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_templates_are_the_repository_files():
    for name in (catalog.DVC_YAML, catalog.PARAMS):
        assert template_text(name) == (REPO_ROOT / name).read_text(), name


def test_every_stage_file_of_the_repository_is_the_template_and_init_writes_all_of_them():
    files = project_files()
    repo_stages = sorted(p.name for p in (REPO_ROOT / catalog.STAGES_DIR).glob("*.py"))
    written = sorted(Path(rel).name for rel in files if rel.startswith(f"{catalog.STAGES_DIR}/"))
    assert written == repo_stages
    for name in repo_stages:
        text = (REPO_ROOT / catalog.STAGES_DIR / name).read_text()
        assert text == STAGE_FILE.format(name=Path(name).stem) == files[f"{catalog.STAGES_DIR}/{name}"]


def test_the_project_dvc_yaml_is_the_repository_one_less_the_deps_under_src():
    repo = yaml.safe_load((REPO_ROOT / catalog.DVC_YAML).read_text())
    for spec in repo["stages"].values():
        spec["deps"] = [d for d in spec["deps"] if not str(d).startswith(f"{catalog.SRC_DIR}/")]
    project = yaml.safe_load(project_files()[catalog.DVC_YAML])
    assert project == repo
    assert f"{catalog.SRC_DIR}/" not in project_files()[catalog.DVC_YAML]


def test_the_project_params_yaml_is_the_repository_one_with_an_empty_label_set():
    repo = yaml.safe_load((REPO_ROOT / catalog.PARAMS).read_text())
    repo["ingest"]["labels"] = []
    text = project_files()[catalog.PARAMS]
    assert yaml.safe_load(text) == repo
    # the comments travel too: every line but the label set's is the repository's
    repo_lines = (REPO_ROOT / catalog.PARAMS).read_text().splitlines()
    changed = [(a, b) for a, b in zip(repo_lines, text.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("  labels: []")


def test_a_stage_file_imported_again_by_a_spawned_worker_does_not_run_the_stage(tmp_path, monkeypatch):
    """multiprocessing's spawn imports the main script again as ``__mp_main__``: a stage file of an older
    project (no ``__main__`` guard) must not run its stage there; as ``__main__`` it does."""
    monkeypatch.setattr("labelcycle.tracking.runs.configure", lambda root: "0")  # no store needed here
    ran = []
    old_stage_file = "from labelcycle.pipeline import run_stage\nrun_stage(main)\n"
    for name in ("__mp_main__", "__main__"):
        ns = {"__name__": name, "main": lambda name=name: ran.append(name)}
        exec(compile(old_stage_file, str(tmp_path / "stage.py"), "exec"), ns)
    assert ran == ["__main__"]
