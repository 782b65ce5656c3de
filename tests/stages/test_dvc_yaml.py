"""dvc.yaml declares what every stage reads and writes: a static check of ``labelcycle.stages.<name>``
(the stage's code; ``stages/<name>.py`` is the thin file dvc runs).

For each stage: the catalog paths its file names (``catalog.X``, typed reports such as ``BestParamsReport``)
are deps or outs and every declared data path is one the file names; the ``labelcycle`` modules it
imports for its logic are deps; the params keys it reads are exactly the ones listed.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

from labelcycle import catalog
from labelcycle.params import Params

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((REPO_ROOT / catalog.DVC_YAML).read_text())["stages"]
#: what a stage reads and writes lives under these folders (catalog paths elsewhere are project files)
DATA_FOLDERS = (catalog.RAW.split("/")[0], catalog.REPORTS, catalog.QUALITY_MODEL.split("/")[0])
#: modules that wire a stage (paths, params, errors, column names, MLflow runs, digests for logging)
WIRING = {
    "labelcycle",
    "labelcycle.catalog",
    "labelcycle.errors",
    "labelcycle.params",
    "labelcycle.pipeline",
    "labelcycle.schema",
    "labelcycle.tracking.runs",
    "labelcycle.versioning.digest",
}
#: ``Params`` properties and the params keys they read
PROPERTIES = {"classes": {"ingest.labels"}, "error_model": {"train_error_model", "aggregate.method"}}


def _tree(stage: str) -> ast.Module:
    return ast.parse((REPO_ROOT / catalog.SRC_DIR / "labelcycle" / "stages" / f"{stage}.py").read_text())


def _paths(entries: list) -> set[str]:
    """Paths of dvc.yaml deps/outs/metrics/plots entries (a string or ``{path: options}``)."""
    return {e if isinstance(e, str) else next(iter(e)) for e in entries or []}


def _declared(stage: str) -> tuple[set[str], set[str]]:
    spec = STAGES[stage]
    outs = _paths(spec.get("outs")) | _paths(spec.get("metrics")) | _paths(spec.get("plots"))
    return _paths(spec.get("deps")), outs


def _is_data(path: str) -> bool:
    return path.split("/")[0] in DATA_FOLDERS


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


#: StageContext methods that read catalog paths on the stage's behalf
CONTEXT_READS = {"training_inputs": {catalog.TRAIN_SAMPLE, catalog.EVAL, catalog.SAMPLE_REPORT}}


def _catalog_paths(tree: ast.Module) -> set[str]:
    """Data paths the stage file names: ``catalog.X`` strings, the ``PATH`` of imported report classes and
    the paths the stage context's readers (``ctx.training_inputs()``) read for it."""
    paths = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in CONTEXT_READS:
            paths |= CONTEXT_READS[node.func.attr]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "catalog"
        ):
            value = getattr(catalog, node.attr)
            if isinstance(value, str):
                paths.add(value)
        elif isinstance(node, ast.ImportFrom) and node.module == "labelcycle.catalog":
            for alias in node.names:
                report = getattr(getattr(catalog, alias.name), "PATH", None)
                if isinstance(report, str):
                    paths.add(report)
    return {p for p in paths if _is_data(p)}


def _modules(tree: ast.Module) -> set[str]:
    """``labelcycle`` modules the stage file imports (anywhere in the file, lazy imports included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "labelcycle"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "labelcycle":
            for alias in node.names:  # `from labelcycle.versioning import raw` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_package(node.module) and importlib.util.find_spec(sub) else node.module)
    return found


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def _module_path(module: str) -> str:
    """``src/labelcycle/x/y.py`` for a module, ``src/labelcycle/x`` for a package."""
    rel = "/".join(module.split("."))
    return f"{catalog.SRC_DIR}/{rel}" if _is_package(module) else f"{catalog.SRC_DIR}/{rel}.py"


def _params_read(tree: ast.Module) -> set[str]:
    """Params keys the stage reads through the ``Params`` returned by ``stage_params``."""

    def assigned_from(test) -> set[str]:
        return {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and test(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

    contexts = assigned_from(
        lambda v: isinstance(v, ast.Call) and getattr(v.func, "id", None) == "stage_context"
    )
    names = assigned_from(
        lambda v: (
            (isinstance(v, ast.Call) and getattr(v.func, "id", None) == "stage_params")
            or (
                isinstance(v, ast.Attribute)
                and v.attr == "params"
                and getattr(v.value, "id", None) in contexts
            )
        )
    )
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    sections = {f.name for f in dataclasses.fields(Params)}
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        chain = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in contexts and chain[:1] == ["params"] and len(chain) > 1:
            chain = chain[1:]
        elif not (isinstance(node, ast.Name) and node.id in names):
            continue
        if chain[0] in PROPERTIES:
            keys |= PROPERTIES[chain[0]]
            continue
        assert chain[0] in sections, f"Params.{chain[0]} is neither a section nor a known property"
        # params.<section>.<key> reads one key; the section itself (or a method of it) reads it all
        fields = {f.name for f in dataclasses.fields(getattr(Params(), chain[0]))}
        keys.add(f"{chain[0]}.{chain[1]}" if len(chain) > 1 and chain[1] in fields else chain[0])
    return keys


def test_every_stage_runs_its_own_file_and_depends_on_it_and_on_its_code():
    files = {p.stem for p in (REPO_ROOT / catalog.STAGES_DIR).glob("*.py")}
    assert set(STAGES) == files
    for stage, spec in STAGES.items():
        script = f"{catalog.STAGES_DIR}/{stage}.py"
        code = f"{catalog.SRC_DIR}/labelcycle/stages/{stage}.py"
        assert spec["cmd"] == f"python {script}" and {script, code} <= _declared(stage)[0], stage


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_catalog_path_a_stage_file_names_is_a_dep_or_out_of_that_stage(stage):
    deps, outs = _declared(stage)
    declared = deps | outs
    named = _catalog_paths(_tree(stage))
    undeclared = {p for p in named if not any(_within(p, d) or _within(d, p) for d in declared)}
    assert not undeclared, f"{stage} names {sorted(undeclared)} but dvc.yaml does not declare them"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_data_path_dvc_yaml_declares_for_a_stage_is_named_by_its_file(stage):
    deps, outs = _declared(stage)
    named = _catalog_paths(_tree(stage))
    unnamed = {d for d in deps | outs if _is_data(d) and not any(_within(d, p) for p in named)}
    assert not unnamed, f"dvc.yaml declares {sorted(unnamed)} for {stage}, which its file never names"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_holding_a_stage_logic_is_a_dep_of_that_stage(stage):
    deps, _ = _declared(stage)
    logic = {_module_path(m) for m in _modules(_tree(stage)) - WIRING}
    missing = {m for m in logic if not any(_within(m, d) for d in deps)}
    assert not missing, f"{stage} imports its logic from {sorted(missing)}, not deps in dvc.yaml"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_yaml_lists_exactly_the_params_keys_a_stage_reads(stage):
    listed = set(STAGES[stage].get("params") or [])
    read = _params_read(_tree(stage))
    unlisted = {k for k in read if not any(_within(k.replace(".", "/"), e.replace(".", "/")) for e in listed)}
    assert not unlisted, f"{stage} reads {sorted(unlisted)} but dvc.yaml does not list them"
    unread = {
        e
        for e in listed
        if not any(
            _within(k.replace(".", "/"), e.replace(".", "/"))
            or _within(e.replace(".", "/"), k.replace(".", "/"))
            for k in read
        )
    }
    assert not unread, f"dvc.yaml lists {sorted(unread)} for {stage}, which it never reads"
