"""A small promotion lab: a git repository, a real MLflow store and registry, and real promote plans.

Plans are built by :func:`~labelcycle.promotion.plan.build_plan` from the registry and git state as
:mod:`labelcycle.promotion.facts` reads it, so executing them exercises the real locking, revalidation,
intent and recovery; only the evidence (predictions, DVC) is made up.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from labelcycle.params import PromoteParams
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.execute import Context
from labelcycle.promotion.gates import CommitFacts, RemoteFacts
from labelcycle.promotion.release import ModelRef, Release
from labelcycle.tracking.registry import Registry

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
PREDS = pd.DataFrame(
    {
        "item_id": [f"i{k}" for k in range(10)],
        "gold_label": ["a", "b"] * 5,
        "label": ["a", "b"] * 5,
        "proba_a": [0.9, 0.1] * 5,
        "proba_b": [0.1, 0.9] * 5,
    }
)
LENIENT = PromoteParams(n_boot=20, margin=1.0, slice_margin=1.0)


class Lab:
    """One test's project: its git repository, its own registered model, the module's MLflow store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.model = f"q-{uuid.uuid4().hex[:8]}"
        self.registry = Registry(root)
        self.registry.client.create_registered_model(self.model)
        (root / "params.yaml").write_text(yaml.safe_dump({"train_quality": {"registered_model": self.model}}))
        self.commit("params")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
        ).stdout.strip()

    def commit(self, message: str = "change") -> str:
        (self.root / "f.txt").write_text(uuid.uuid4().hex)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def version(self) -> str:
        """A new version of the lab's model, trained by a new run."""
        client = self.registry.client
        run = client.create_run(client.get_experiment_by_name("labelcycle").experiment_id)
        mv = client.create_model_version(self.model, source=str(self.root / "m"), run_id=run.info.run_id)
        return str(mv.version)

    def candidate(self, version: str, rev: str) -> Release:
        run = self.registry.version_source_run(self.model, version)
        return Release(
            dataset_digest=f"ds-{version}",
            git_rev=rev,
            dvc_hashes={},
            raw_batches=("b1",),
            eval_digest="e1",
            metrics={"accuracy": 1.0},
            intervals={},
            models=(ModelRef("quality", self.model, version, run),),
        )

    def plan(self, version: str, rev: str | None = None) -> P.Plan:
        """The promote plan of ``version`` at ``rev`` (default HEAD) against production now."""
        registry = self.registry
        cand = self.candidate(version, rev or self.git("rev-parse", "HEAD"))
        rid = records.current_release_id(registry, self.model)
        prod, prod_preds = (None, None) if rid is None else records.load_release(registry, rid)[:2]
        tag_keys = set(P.model_version_tags(cand.with_id("x")))
        ev = P.Evidence(
            candidate=cand,
            production=prod,
            candidate_predictions=PREDS,
            production_predictions=prod_preds,
            classes=["a", "b"],
            slice_features=None,
            ingest_passed=True,
            split_digest="e1",
            commit=CommitFacts(cand.git_rev),
            remote=RemoteFacts("r", "/remote", True, True),
            registered={(self.model, version): cand.models[0].run_id},
            state=records.registry_state(
                registry, self.root, {self.model}, {(self.model, version)}, tag_keys
            ),
            next_release_number=records.next_release_number(registry, self.root),
        )
        return P.build_plan(ev, LENIENT, "accuracy")

    def ctx(self) -> Context:
        return Context(self.root, PREDS)

    # -- what is recorded ----------------------------------------------------------------------------

    def production(self) -> str | None:
        return self.registry.alias(self.model, P.ALIAS)

    def release_records(self, rid: str) -> list[str]:
        return [r.run_id for r in self.registry.records("release") if r.tags.get(P.TAG_RELEASE) == rid]

    def audit_records(self, rid: str) -> list[str]:
        return [r.run_id for r in self.registry.records("audit") if r.tags.get(P.TAG_RELEASE) == rid]

    def tags(self) -> dict[str, str]:
        return records.release_git_tags(self.root)

    def release_tag(self, version: str) -> str | None:
        return self.registry.version_tags(self.model, version).get(P.TAG_RELEASE)


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory) -> str:
    """One MLflow store for the module (creating one takes seconds); each lab has its own model."""
    return f"sqlite:///{tmp_path_factory.mktemp('lab-store') / 'mlflow.db'}"


@pytest.fixture
def lab(tmp_path, lab_store, monkeypatch) -> Lab:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab_store)
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env={**os.environ, **GIT_ENV})
    return Lab(root)
