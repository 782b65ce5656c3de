"""Fault injection on promotion: concurrent commands and commands killed at each step.

One small demo project, two trained candidates (A and B, two commits), the real CLI, MLflow store,
registry, git tags and DVC remote. Promotion gates are lenient (``promote.margin: 1.0``) so that either
candidate may follow the other; what is judged here is the release state, not the models.

After every fault the state must be consistent (:func:`consistent`): no intent left; every release git
tag has exactly one release record naming its commit; every release record has exactly one promote
audit record; no record is cut short; the production alias, the model-version tags and the release
record agree; no model version outside a release carries its id; and no git tag ever moved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import yaml
from tests.conftest import ingest_demo

from labelcycle.locking import project_lock
from labelcycle.promotion.intent import intent_path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "labelcycle-quality"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
#: runs the CLI with one function made to die (SIGKILL) at its nth call, before or after doing its work
KILLER = r"""
import importlib, os, signal, sys
target, name, nth, when, *args = sys.argv[1:]
module, _, cls = target.partition(":")
owner = importlib.import_module(module)
owner = getattr(owner, cls) if cls else owner
original, calls = getattr(owner, name), []
def dying(*a, **k):
    calls.append(1)
    if len(calls) == int(nth) and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    out = original(*a, **k)
    if len(calls) == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
setattr(owner, name, dying)
from labelcycle.cli import main
sys.argv = ["labelcycle", *args]
main()
"""
#: (what the kill leaves, where it strikes): every step of a promotion, in the order they happen
KILLS = [
    ("intent written, nothing done", "labelcycle.promotion.intent:Intent", "save", 1, "after"),
    ("git tag created", "labelcycle.versioning.git", "set_tag", 1, "after"),
    ("model-version tags set", "labelcycle.tracking.registry:Registry", "set_version_tags", 1, "after"),
    ("alias moved", "labelcycle.tracking.registry:Registry", "set_alias", 1, "after"),
    ("release record cut short", "mlflow:MlflowClient", "set_terminated", 1, "before"),
    (
        "release record written, not marked done",
        "labelcycle.tracking.registry:Registry",
        "write_record",
        1,
        "after",
    ),
    (
        "audit record written, not marked done",
        "labelcycle.tracking.registry:Registry",
        "write_record",
        2,
        "after",
    ),
    ("all done, intent not removed", "labelcycle.promotion.intent:Intent", "remove", 1, "before"),
]
NEXT = (("status",), ("promote", "--dry-run"), ("rollback", "--dry-run"))


def sh(cwd: Path, *args: str, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV, **(env or {})}
    )
    if ok:
        assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def lc(cwd: Path, *args: str, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "labelcycle.cli", *args, ok=ok, env=env)


def one_error_line(res: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one ``error:`` line and no traceback; that line."""
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def set_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def train_and_commit(root: Path, message: str, **sections: dict) -> str:
    set_params(root, **sections)
    sh(root, "dvc", "repro", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", message)
    return sh(root, "git", "rev-parse", "HEAD").stdout.strip()


def git_tags(root: Path) -> dict[str, str]:
    out = sh(
        root,
        "git",
        "for-each-ref",
        "--format=%(refname:strip=2) %(*objectname) %(objectname)",
        "refs/tags/dataset",
    ).stdout
    return {p[0]: p[1] for p in (line.split() for line in out.splitlines())}


class World:
    """The project, its store, and every release tag ever seen (a tag must never move)."""

    def __init__(self, root: Path, uri: str, revs: dict[str, str]) -> None:
        self.root, self.uri, self.revs = root, uri, revs
        self.client = mlflow.MlflowClient(uri)
        self.seen: dict[str, str] = {}
        self.faults: list[str] = []

    def records(self) -> list:
        exp = self.client.get_experiment_by_name("labelcycle-releases")
        return self.client.search_runs([exp.experiment_id], max_results=5000) if exp else []

    def production(self) -> tuple[str, str] | None:
        """(release id, quality model version) of production, or None."""
        aliases = self.client.get_registered_model(MODEL).aliases
        if "production" not in aliases:
            return None
        v = self.client.get_model_version(MODEL, aliases["production"])
        return v.tags.get("labelcycle.release"), str(v.version)

    def left_behind(self) -> str:
        """What a killed command left: intent, tags, alias, records (for the fault table)."""
        runs = self.records()
        whole = Counter(r.data.tags.get("labelcycle.kind") for r in runs if "labelcycle.kind" in r.data.tags)
        partial = sum("labelcycle.kind" not in r.data.tags for r in runs)
        return (
            f"intent={'yes' if intent_path(self.root).exists() else 'no'}, tags={sorted(git_tags(self.root))}, "
            f"production={self.production()}, release records={whole['release']}, audit records={whole['audit']}"
            f", cut-short records={partial}"
        )

    def consistent(self) -> tuple[str, str]:
        """Check every invariant of the release state; returns production's (release id, version)."""
        assert not intent_path(self.root).exists()
        runs = self.records()
        assert all("labelcycle.kind" in r.data.tags for r in runs), "a record was cut short"
        releases = [r for r in runs if r.data.tags["labelcycle.kind"] == "release"]
        ids = [r.data.tags["labelcycle.release"] for r in releases]
        assert len(ids) == len(set(ids)), f"two release records for one release: {ids}"
        promotes = Counter(
            r.data.tags["labelcycle.release"]
            for r in runs
            if r.data.tags["labelcycle.kind"] == "audit" and r.data.tags.get("labelcycle.action") == "promote"
        )
        assert promotes == Counter(ids), f"audit records {promotes} != release records {ids}"
        tags = git_tags(self.root)
        by_id = {r.data.tags["labelcycle.release"]: r for r in releases}
        for tag, commit in tags.items():
            assert tag in by_id and by_id[tag].data.tags["labelcycle.git_rev"] == commit
            assert self.seen.setdefault(tag, commit) == commit, f"git tag {tag} moved"
        prod = self.production()
        assert prod is not None and prod[0] in tags
        models = by_id[prod[0]].data.tags["labelcycle.models"].split(", ")
        for mv in models:
            name, _, version = mv.rpartition("/")
            assert str(self.client.get_model_version_by_alias(name, "production").version) == version
        carrying = {
            f"{v.name}/{v.version}"
            for name in {m.rpartition("/")[0] for m in models}
            for v in self.client.search_model_versions(f"name='{name}'")
            if v.tags.get("labelcycle.release") == prod[0]
        }
        assert carrying == set(models), f"model versions tagged {prod[0]}: {carrying}, release: {models}"
        return prod

    def other(self) -> str:
        """The candidate (A or B) that is not production."""
        prod = self.production()
        rev_of_prod = git_tags(self.root).get(prod[0]) if prod else None
        return self.revs["A"] if rev_of_prod == self.revs["B"] else self.revs["B"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, project_factory):
    root = project_factory(tmp_path_factory.mktemp("faults") / "proj")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\ndemo/\noptuna.db\n*.parquet\n")
    set_params(
        root,
        split={"eval_fraction": 1.0},
        tune={"n_trials": 1, "n_estimators": 20, "n_jobs": 1},
        train_error_model={"features": {"quality_rounds": 20}, "n_jobs": 1},
        train_quality={"n_estimators": 10, "n_jobs": 1, "use_tuned": False},
        evaluate={"n_boot": 50},
        promote={"n_boot": 50, "margin": 1.0, "slice_margin": 1.0},
    )
    ingest_demo(root, 3000, 30, 1)
    rev_a = train_and_commit(root, "candidate A")
    rev_b = train_and_commit(root, "candidate B", train_quality={"n_estimators": 15})
    return World(root, uri, {"A": rev_a, "B": rev_b})


@pytest.fixture
def w(world, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)  # the autouse fixture gives each test its own store
    return world


def _race(w: World, *versions: str) -> list[subprocess.CompletedProcess]:
    """Start one ``promote`` per version while the test holds the lock, wait until every one has planned
    and waits for the lock, then let them all go at once."""
    procs, outs, files = [], [], []
    with project_lock(w.root, "test barrier"):
        for i, version in enumerate(versions):
            out = w.root.parent / f"race-{time.monotonic_ns()}-{i}.out"
            outs.append(out)
            files.append(out.open("w"))
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "labelcycle.cli", "promote", version],
                    cwd=w.root,
                    stdout=files[-1],
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, **GIT_ENV},
                )
            )
        deadline = time.monotonic() + 600
        while not all("changes:" in o.read_text() for o in outs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), (
                "a promote did not plan"
            )
            time.sleep(0.5)
    results = []
    for p, o in zip(procs, outs, strict=True):
        _, err = p.communicate(timeout=600)
        files.pop(0).close()
        results.append(subprocess.CompletedProcess(p.args, p.returncode, o.read_text(), err))
    return results


def test_concurrent_promotes_of_different_versions_one_wins_the_other_is_refused(w):
    results = _race(w, w.revs["A"], w.revs["B"])
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, [(r.returncode, r.stdout[-300:], r.stderr) for r in results]
    assert "promoted dataset/v1" in won[0].stdout
    assert "the promote plan is out of date" in one_error_line(lost[0])
    assert w.consistent()[0] == "dataset/v1" and len(git_tags(w.root)) == 1


def test_concurrent_promotes_of_the_same_version_promote_and_record_it_once(w):
    loser = w.other()
    results = _race(w, loser, loser)
    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, [(r.returncode, r.stdout[-300:], r.stderr) for r in results]
    assert "promoted dataset/v2" in won[0].stdout
    assert "already production as dataset/v2" in one_error_line(lost[0])
    assert w.consistent()[0] == "dataset/v2"


def test_a_promote_waiting_too_long_for_the_lock_names_the_holder(w):
    before = w.left_behind()
    with project_lock(w.root, "test holder"):
        res = lc(w.root, "promote", w.other(), ok=False, env={"LABELCYCLE_LOCK_TIMEOUT": "1"})
        assert lc(w.root, "status").returncode == 0  # reading needs no lock
    line = one_error_line(res)
    assert f"locked by pid {os.getpid()} (test holder" in line and "LABELCYCLE_LOCK_TIMEOUT" in line
    assert w.left_behind() == before
    w.consistent()


@pytest.mark.parametrize("what,target,name,nth,when", KILLS, ids=[k[0] for k in KILLS])
def test_a_promote_killed_at_each_step_is_completed_by_the_next_command(w, what, target, name, nth, when):
    version = w.other()
    before = w.production()
    killed = sh(
        w.root, sys.executable, "-c", KILLER, target, name, str(nth), when, "promote", version, ok=False
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    left = w.left_behind()
    step = KILLS.index((what, target, name, nth, when))
    nxt = lc(w.root, *NEXT[step % len(NEXT)])
    note = next(x for x in nxt.stdout.splitlines() if x.startswith("note: "))
    assert "interrupted promotion of dataset/v" in note and "was found and completed" in note
    rid, _ = w.consistent()
    assert rid != before[0] and git_tags(w.root)[rid] == version
    w.faults.append(
        f"promote killed after: {what} | left: {left} | `{' '.join(NEXT[step % len(NEXT)])}`: completed"
    )


def test_a_killed_promote_that_cannot_be_completed_is_undone(w, monkeypatch):
    before = w.production()
    # MLflow resolves a version's `models:/m-...` source through the default store: the project's here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", w.uri)
    mlflow.set_tracking_uri(w.uri)
    killed = sh(
        w.root,
        sys.executable,
        "-c",
        KILLER,
        "labelcycle.versioning.git",
        "set_tag",
        "1",
        "after",
        "promote",
        w.other(),
        ok=False,
    )
    assert killed.returncode == -9
    # meanwhile someone points the alias at another version by hand
    src = w.client.get_model_version(MODEL, before[1])
    extra = w.client.create_model_version(MODEL, source=src.source, run_id=src.run_id)
    w.client.set_registered_model_alias(MODEL, "production", extra.version)
    left = w.left_behind()
    res = lc(w.root, "status")
    note = next(x for x in res.stdout.splitlines() if x.startswith("note: "))
    assert f"@production is now v{extra.version}" in note and "so it was undone" in note
    assert w.consistent() == before
    undone = [r for r in w.records() if r.data.tags.get("labelcycle.action") == "promote-undone"]
    assert len(undone) == 1, "the undone promotion leaves one audit record"
    w.faults.append(
        f"promote killed after: git tag created, alias then set by hand | left: {left} | `status`: undone"
    )


def test_a_rollback_killed_after_moving_the_alias_is_completed_by_status(w):
    before = w.production()
    killed = sh(
        w.root,
        sys.executable,
        "-c",
        KILLER,
        "labelcycle.tracking.registry:Registry",
        "set_alias",
        "1",
        "after",
        "rollback",
        "--reason",
        "faults",
        ok=False,
    )
    assert killed.returncode == -9
    left = w.left_behind()
    res = lc(w.root, "status")
    assert "interrupted rollback to dataset/v" in res.stdout and "was found and completed" in res.stdout
    rid, _ = w.consistent()
    assert rid != before[0] and before[0] not in git_tags(w.root)
    rollbacks = [r for r in w.records() if r.data.tags.get("labelcycle.action") == "rollback"]
    assert [r.data.tags["labelcycle.from_release"] for r in rollbacks].count(before[0]) == 1
    w.faults.append(f"rollback killed after: alias moved | left: {left} | `status`: completed")
    print("\nFAULTS\n" + "\n".join(w.faults))
