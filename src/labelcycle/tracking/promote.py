"""Promotion, status and rollback against MLflow, git and DVC (the I/O around :mod:`labelcycle.promotion`).

``plan_promotion`` gathers the facts and asks :func:`labelcycle.promotion.build_plan` for the plan
without changing anything; ``execute`` carries a plan out. A production release is:

* the registry alias ``production`` on each of its models (``labelcycle-quality``, and the error model
  when one is registered), each version tagged with the release id, dataset digest, git revision and
  DVC hashes;
* a git tag ``dataset/vN`` at the commit whose ``dvc.lock`` and ``data/raw.dvc`` describe the data;
* a release record: a run in the MLflow experiment ``labelcycle-releases`` holding ``manifest.json``
  and the per-item ``predictions.parquet`` that later promotions are compared against.

Every promotion and rollback also writes an audit record (a run in the same experiment) with the whole
plan: gates and their evidence, the state before and after, the reason, who and when.
"""

from __future__ import annotations

import getpass
import json
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import schema
from labelcycle.errors import LabelcycleError, TrackingError, WorkspaceError
from labelcycle.params import load as load_params_of
from labelcycle.promotion import plan as P
from labelcycle.promotion.gates import CommitFacts
from labelcycle.promotion.release import ModelRef, Release, release_number
from labelcycle.tracking.runs import TAG_PIPELINE_RUN, TAG_STAGE, configure
from labelcycle.versioning import release as vr
from labelcycle.versioning.digest import table_digest

RELEASES_EXPERIMENT = "labelcycle-releases"
TAG_KIND = "labelcycle.kind"
TAG_ACTION = "labelcycle.action"
TAG_FROM = "labelcycle.from_release"
TAG_UNDONE = "labelcycle.undone"
HEADLINE = ("accuracy", "macro_f1", "roc_auc_ovr", "pr_auc_ovr", "log_loss", "ece", "brier")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Context:
    """What the executor needs beside the plan."""

    root: Path
    predictions: pd.DataFrame | None = None
    remote_rev: str | None = None


def _client(root: Path):
    import mlflow

    configure(root)
    return mlflow.MlflowClient()


def _quality_name(root: Path) -> str:
    return load_params_of(root).train_quality.registered_model


def _read_json(data: bytes | str | None) -> dict:
    if not data:
        return {}
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return {}


# ---------------------------------------------------------------- registry state


def _alias(client, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, P.ALIAS).version)
    except Exception:  # no such model or alias
        return None


def _version_tags(client, name: str, version: str) -> dict[str, str]:
    try:
        return dict(client.get_model_version(name, version).tags)
    except Exception:
        return {}


def registry_state(
    client, root: Path, names: set[str], versions: set[tuple[str, str]], tag_keys: set[str] | None = None
) -> P.RegistryState:
    """Aliases of ``names``, labelcycle's tags on ``versions``, and every ``dataset/vN`` git tag."""
    aliases = {n: _alias(client, n) for n in sorted(names)}
    vt = {}
    for name, version in sorted(versions):
        tags = _version_tags(client, name, version)
        keys = set(tag_keys or ()) | {k for k in tags if k.startswith("labelcycle.")}
        vt[f"{name}/{version}"] = {k: tags.get(k) for k in sorted(keys)}
    return P.RegistryState(aliases, vt, vr.dataset_tags(root))


# ---------------------------------------------------------------- release records


def _experiment_id(client, create: bool, root: Path | None = None) -> str | None:
    exp = client.get_experiment_by_name(RELEASES_EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    if not create:
        return None
    from labelcycle.tracking.runs import tracking_uri

    location = None
    if root is not None and (tracking_uri(root).startswith("sqlite:") or "://" not in tracking_uri(root)):
        location = (root / "mlartifacts").resolve().as_uri()
    return client.create_experiment(RELEASES_EXPERIMENT, artifact_location=location)


def _records(client, kind: str) -> list:
    exp = _experiment_id(client, create=False)
    if exp is None:
        return []
    return client.search_runs(
        [exp],
        filter_string=f"tags.`{TAG_KIND}` = '{kind}'",
        max_results=5000,
        order_by=["attributes.start_time DESC"],
    )


def _download_json(client, run_id: str, name: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, name, tmp)
        except Exception as exc:
            raise TrackingError(f"cannot read {name} of MLflow run {run_id}: {exc}") from exc
        return json.loads(Path(path).read_text())


def _download_table(client, run_id: str, name: str) -> pd.DataFrame | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return pd.read_parquet(client.download_artifacts(run_id, name, tmp))
        except Exception:
            return None


def release_record(client, rid: str) -> Any | None:
    for run in _records(client, "release"):
        if run.data.tags.get(P.TAG_RELEASE) == rid:
            return run
    return None


def current_release_id(client, root: Path) -> str | None:
    """The release the quality model's ``production`` alias belongs to (None: no production)."""
    name = _quality_name(root)
    version = _alias(client, name)
    if version is None:
        return None
    rid = _version_tags(client, name, version).get(P.TAG_RELEASE)
    if not rid:
        raise WorkspaceError(
            f"{name}@{P.ALIAS} points at v{version}, which carries no {P.TAG_RELEASE} tag: it was set outside "
            "labelcycle. Remove the alias or promote with labelcycle so a release record exists"
        )
    return rid


def load_release(client, rid: str) -> tuple[Release, pd.DataFrame | None, str]:
    run = release_record(client, rid)
    if run is None:
        raise WorkspaceError(f"no release record for {rid} in the MLflow experiment {RELEASES_EXPERIMENT!r}")
    manifest = _download_json(client, run.info.run_id, "manifest.json")
    return (
        Release.from_manifest(manifest),
        _download_table(client, run.info.run_id, "predictions.parquet"),
        run.info.run_id,
    )


def production(client, root: Path) -> tuple[Release | None, pd.DataFrame | None]:
    rid = current_release_id(client, root)
    if rid is None:
        return None, None
    rel, preds, _ = load_release(client, rid)
    return rel, preds


def next_release_number(client, root: Path) -> int:
    numbers = [release_number(r.data.tags.get(P.TAG_RELEASE)) for r in _records(client, "release")]
    numbers += [release_number(t) for t in vr.dataset_tags(root)]
    return max([n for n in numbers if n is not None], default=0) + 1


# ---------------------------------------------------------------- the candidate


def _models_from_reports(reports: dict[str, dict]) -> tuple[ModelRef, ...]:
    """Registered models named by stage reports (``registered_model`` + ``model_version``)."""
    out = []
    for stem, data in sorted(reports.items()):
        if data.get("registered_model") and data.get("model_version") not in (None, ""):
            role = stem.removeprefix("train_").removesuffix("_model") or stem
            out.append(
                ModelRef(
                    role,
                    str(data["registered_model"]),
                    str(data["model_version"]),
                    data.get("mlflow_run_id") or None,
                )
            )
    return tuple(sorted(out, key=lambda m: (m.role != "quality", m.role)))


def _find_evaluate_run(client, quality_run: str | None, predictions_md5: str | None) -> Any | None:
    if not quality_run:
        return None
    try:
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`{TAG_STAGE}` = 'evaluate' and tags.`quality_model.run_id` = '{quality_run}'",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
    except Exception:
        return None
    for run in runs:
        if not predictions_md5 or run.data.tags.get("dvc.out.reports/predictions.parquet") == predictions_md5:
            return run
    return runs[0] if runs else None


@dataclass
class CandidateFacts:
    release: Release
    predictions: pd.DataFrame
    ingest_passed: bool | None
    split_digest: str | None
    commit: CommitFacts
    rev: str | None  # commit to push from (None: the workspace)
    items: pd.DataFrame | None


def _slice_features(items: pd.DataFrame | None) -> pd.DataFrame | None:
    if items is None:
        return None
    cols = [c for c in items.columns if c != schema.ITEM_ID and not pd.api.types.is_numeric_dtype(items[c])]
    return items[[schema.ITEM_ID, *cols]] if cols else None


def _release_from(
    reports: dict[str, dict],
    dataset_digest: str,
    rev: str | None,
    hashes: dict[str, str],
    source: str,
    eval_run: Any | None,
) -> Release:
    metrics = reports.get("metrics", {})
    return Release(
        dataset_digest=dataset_digest,
        git_rev=rev,
        dvc_hashes=hashes,
        raw_batches=tuple(reports.get("ingest", {}).get("batches") or ()),
        eval_digest=metrics.get("eval_digest"),
        metrics={k: float(metrics[k]) for k in HEADLINE if k in metrics},
        intervals=dict(metrics.get("ci95") or {}),
        models=_models_from_reports({k: v for k, v in reports.items() if k.startswith("train")}),
        source=source,
        evaluate_run_id=eval_run.info.run_id if eval_run is not None else None,
        pipeline_run=eval_run.data.tags.get(TAG_PIPELINE_RUN) if eval_run is not None else None,
        eval_items=metrics.get("eval_items"),
    )


def workspace_candidate(client, root: Path) -> CandidateFacts:
    """The candidate the workspace holds: HEAD + dvc.lock + reports/."""
    reports = {p.stem: _read_json(p.read_text()) for p in sorted((root / "reports").glob("*.json"))}
    for needed in ("metrics", "train_quality"):
        if not reports.get(needed):
            raise WorkspaceError(
                f"{root / 'reports' / (needed + '.json')}: missing; run `dvc repro` to train and "
                "evaluate a candidate before promoting it"
            )
    pred_path = root / "reports/predictions.parquet"
    if not pred_path.exists():
        raise WorkspaceError(f"{pred_path}: missing; run `dvc repro` (stage evaluate)")
    predictions = pd.read_parquet(pred_path)
    curated = root / "data/curated/dataset.parquet"
    digest = (
        table_digest(pd.read_parquet(curated))
        if curated.exists()
        else str(reports.get("aggregate", {}).get("curated_digest", ""))
    )
    split = root / "data/split/eval.parquet"
    split_digest = table_digest(pd.read_parquet(split)) if split.exists() else None
    rev = vr.resolve(root, "HEAD")
    hashes = vr.release_hashes(root, None)
    eval_run = _find_evaluate_run(
        client, reports["train_quality"].get("mlflow_run_id"), hashes.get("reports/predictions.parquet")
    )
    items_path = root / "data/interim/items.parquet"
    return CandidateFacts(
        release=_release_from(reports, digest, rev, hashes, "workspace", eval_run),
        predictions=predictions,
        ingest_passed=reports.get("ingest", {}).get("validation_passed"),
        split_digest=split_digest,
        commit=vr.commit_facts(root, rev, check_workspace=True),
        rev=None,
        items=pd.read_parquet(items_path) if items_path.exists() else None,
    )


def _cached_table(root: Path, md5: str | None) -> pd.DataFrame | None:
    if not md5:
        return None
    path = vr.cached_file(root, md5)
    return pd.read_parquet(path) if path.exists() else None


def commit_candidate(client, root: Path, rev: str, eval_run: Any | None, source: str) -> CandidateFacts:
    """The candidate committed at ``rev`` (its reports/ and dvc.lock; tables from the DVC cache)."""
    reports = {}
    for stem in ("metrics", "train_quality", "ingest", "aggregate", "split", "train_error_model"):
        data = _read_json(vr.show(root, rev, f"reports/{stem}.json"))
        if data:
            reports[stem] = data
    if not reports.get("metrics") or not reports.get("train_quality"):
        raise WorkspaceError(
            f"commit {rev[:10]} has no committed reports/metrics.json and "
            "reports/train_quality.json; commit the outputs of `dvc repro` first"
        )
    hashes = vr.release_hashes(root, rev)
    predictions = _cached_table(root, hashes.get("reports/predictions.parquet"))
    if predictions is None and eval_run is not None:
        predictions = _download_table(client, eval_run.info.run_id, "predictions.parquet")
    if predictions is None:
        raise WorkspaceError(
            f"the per-item predictions of commit {rev[:10]} are neither in the DVC cache nor in "
            "MLflow; run `dvc fetch` or re-run `dvc repro` at that commit"
        )
    if eval_run is None:
        eval_run = _find_evaluate_run(
            client, reports["train_quality"].get("mlflow_run_id"), hashes.get("reports/predictions.parquet")
        )
    digest = str(reports.get("aggregate", {}).get("curated_digest") or "")
    curated = _cached_table(root, hashes.get("data/curated/dataset.parquet"))
    if curated is not None:
        digest = table_digest(curated)
    items = _cached_table(root, hashes.get("data/interim/items.parquet"))
    if items is None and (root / "data/interim/items.parquet").exists():
        items = pd.read_parquet(root / "data/interim/items.parquet")
    return CandidateFacts(
        release=_release_from(reports, digest, rev, hashes, source, eval_run),
        predictions=predictions,
        ingest_passed=reports.get("ingest", {}).get("validation_passed"),
        split_digest=reports.get("split", {}).get("eval_digest"),
        commit=vr.commit_facts(root, rev, check_workspace=False),
        rev=rev,
        items=items,
    )


def resolve_candidate(client, root: Path, version: str | None) -> CandidateFacts:
    """VERSION: none (the workspace), an MLflow run id of an evaluate stage, or a git revision."""
    if not version:
        return workspace_candidate(client, root)
    if _RUN_ID.match(version):
        try:
            run = client.get_run(version)
        except Exception:
            run = None
        if run is not None:
            stage = run.data.tags.get(TAG_STAGE)
            if stage != "evaluate":
                raise WorkspaceError(
                    f"MLflow run {version} is a {stage or 'non-stage'} run; pass the run id of an "
                    "evaluate stage (it judged the models on the frozen eval split)"
                )
            wanted = {
                p: run.data.tags[f"dvc.out.{p}"]
                for p in ("reports/predictions.parquet", "reports/metrics.json")
                if f"dvc.out.{p}" in run.data.tags
            }
            rev = vr.find_commit_with_outputs(root, wanted) if wanted else None
            if rev is None:
                raise WorkspaceError(
                    f"data-committed: no commit's dvc.lock records the outputs of evaluate run {version} "
                    f"({wanted}); commit dvc.lock (and data/raw.dvc) after the `dvc repro` that made it"
                )
            return commit_candidate(client, root, rev, run, f"run:{version}")
    rev = vr.resolve(root, version)
    if rev is None:
        raise WorkspaceError(f"{version!r} is neither an MLflow evaluate run id nor a git revision of {root}")
    if rev == vr.resolve(root, "HEAD"):
        return workspace_candidate(client, root)
    return commit_candidate(client, root, rev, None, f"git:{version}")


# ---------------------------------------------------------------- plans


def plan_promotion(
    root: Path, version: str | None = None, *, force: bool = False, reason: str | None = None
) -> tuple[P.Plan, Context]:
    """The promotion plan for VERSION (default: the workspace); changes nothing."""
    project = load_params_of(root)
    params, classes = project.promote, project.classes
    client = _client(root)
    cand = resolve_candidate(client, root, version)
    prod, prod_preds = production(client, root)
    names = {m.name for m in cand.release.models} | ({m.name for m in prod.models} if prod else set())
    versions = {(m.name, m.version) for m in cand.release.models}
    registered: dict[tuple[str, str], str | None] = {}
    for m in cand.release.models:
        try:
            registered[(m.name, m.version)] = client.get_model_version(m.name, m.version).run_id or ""
        except Exception:
            registered[(m.name, m.version)] = None
    tag_keys = set(P.release_tags(cand.release.with_id("x")))
    state = registry_state(client, root, names, versions, tag_keys)
    remote = vr.remote_facts(root, cand.rev)
    ev = P.Evidence(
        candidate=cand.release,
        production=prod,
        candidate_predictions=cand.predictions,
        production_predictions=prod_preds,
        classes=[str(c) for c in classes],
        slice_features=_slice_features(cand.items),
        ingest_passed=cand.ingest_passed,
        split_digest=cand.split_digest,
        commit=cand.commit,
        remote=remote,
        registered=registered,
        state=state,
        next_release_number=next_release_number(client, root),
    )
    plan = P.build_plan(
        ev,
        params,
        project.evaluate.primary_metric,
        force=force,
        reason=reason,
        remote_path_note="in .dvc/config.local" if not remote.configured else None,
    )
    return plan, Context(root, cand.predictions, cand.rev)


def _history(client) -> list[P.AuditEntry]:
    out = []
    for run in _records(client, "audit"):
        t = run.data.tags
        out.append(
            P.AuditEntry(
                run.info.run_id,
                t.get(TAG_ACTION, ""),
                t.get(P.TAG_RELEASE) or None,
                t.get(TAG_FROM) or None,
                P.RegistryState(),
                t.get("labelcycle.at", ""),
                t.get(TAG_UNDONE) == "true",
            )
        )
    return out


def plan_rollback(root: Path, reason: str | None = None) -> tuple[P.Plan, Context]:
    """Undo the promotion that made the current release production; changes nothing."""
    client = _client(root)
    current = current_release_id(client, root)
    entry = P.promotion_to_undo(_history(client), current)
    before = P.RegistryState.from_dict(_download_json(client, entry.run_id, "plan.json")["before"])
    entry = replace(entry, before=before)
    cur, _, _ = load_release(client, current) if current else (None, None, None)
    prev, _, _ = load_release(client, entry.from_release) if entry.from_release else (None, None, None)
    names = set(before.aliases) | ({m.name for m in cur.models} if cur else set())
    versions = {tuple(k.rsplit("/", 1)) for k in before.version_tags}
    if cur:
        versions |= {(m.name, m.version) for m in cur.models}
    keys = {k for tags in before.version_tags.values() for k in tags}
    now = registry_state(client, root, names, versions, keys)  # type: ignore[arg-type]
    return P.build_rollback_plan(entry, now, cur, prev, reason), Context(root)


# ---------------------------------------------------------------- carrying a plan out


def _apply_state_action(client, root: Path, a: P.Action, message: str) -> None:
    if a.kind == P.GIT_TAG:
        vr.set_tag(root, a.target, a.data.get("commit"), message)
    elif a.kind == P.MODEL_TAGS:
        for key, value in a.data["tags"].items():
            if value is None:
                client.delete_model_version_tag(a.data["name"], a.data["version"], key)
            else:
                client.set_model_version_tag(a.data["name"], a.data["version"], key, value)
    elif a.kind == P.SET_ALIAS:
        if a.data.get("version") is None:
            client.delete_registered_model_alias(a.data["name"], P.ALIAS)
        else:
            client.set_registered_model_alias(a.data["name"], P.ALIAS, a.data["version"])


def _restore(client, root: Path, plan: P.Plan) -> None:
    names = set(plan.before.aliases) | set(plan.after.aliases)
    versions = {tuple(k.rsplit("/", 1)) for k in set(plan.before.version_tags) | set(plan.after.version_tags)}
    keys = {k for s in (plan.before, plan.after) for tags in s.version_tags.values() for k in tags}
    now = registry_state(client, root, names, versions, keys)  # type: ignore[arg-type]
    for a in P.diff_states(now, plan.before):
        _apply_state_action(client, root, a, "restore")


def _write_record(
    client,
    root: Path,
    kind: str,
    tags: dict[str, str],
    files: dict[str, Any],
    metrics: dict[str, float] | None = None,
    run_name: str | None = None,
) -> str:
    exp = _experiment_id(client, create=True, root=root)
    run = client.create_run(
        exp, tags={TAG_KIND: kind, **{k: str(v) for k, v in tags.items()}}, run_name=run_name
    )
    rid = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            path = Path(tmp) / name
            if isinstance(content, pd.DataFrame):
                content.to_parquet(path, index=False)
            else:
                path.write_text(json.dumps(content, indent=2, sort_keys=True, default=str) + "\n")
            client.log_artifact(rid, str(path))
    for k, v in (metrics or {}).items():
        if v is not None and pd.notna(v):
            client.log_metric(rid, k, float(v))
    client.set_terminated(rid)
    return rid


def execute(plan: P.Plan, ctx: Context) -> dict[str, str]:
    """Carry out an allowed plan; returns the record run ids. A no-op changes nothing.

    Data goes to the DVC remote first (adding objects changes no release); if any later step fails,
    the registry and git tags are put back to the plan's ``before`` state and the error is raised.
    """
    if plan.noop:
        return {}
    if not plan.allowed:
        raise WorkspaceError("refusing to carry out a plan whose gates failed without --force")
    root = ctx.root
    client = _client(root)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    who = getpass.getuser()
    for a in plan.actions:
        if a.kind == P.CONFIGURE_REMOTE:
            vr.configure_default_remote(root, a.data["name"], a.data["url"])
        elif a.kind == P.DVC_PUSH:
            vr.push(root, a.data["remote"], ctx.remote_rev)
    rel = plan.candidate
    message = f"labelcycle {plan.action} {rel.release_id if rel else ''}: {plan.reason or ''}".strip()
    out: dict[str, str] = {}
    try:
        for a in plan.actions:
            _apply_state_action(client, root, a, message)
        if plan.action == "promote" and rel is not None:
            rel = replace(rel, promoted_at=at)
            manifest = rel.to_manifest()
            files: dict[str, Any] = {"manifest.json": manifest}
            if ctx.predictions is not None:
                files["predictions.parquet"] = ctx.predictions
            out["release_record"] = _write_record(
                client,
                root,
                "release",
                {
                    P.TAG_RELEASE: rel.release_id,
                    P.TAG_DATASET_DIGEST: rel.dataset_digest,
                    P.TAG_GIT_REV: rel.git_rev or "",
                    P.TAG_EVAL_DIGEST: rel.eval_digest or "",
                    "labelcycle.forced": str(rel.forced).lower(),
                    "labelcycle.models": ", ".join(f"{m.name}/{m.version}" for m in rel.models),
                },
                files,
                dict(rel.metrics),
                run_name=f"release {rel.release_id}",
            )
        record = {**plan.to_dict(), "at": at, "by": who}
        if rel is not None and plan.action == "promote":
            record["candidate"] = rel.to_manifest()
        target = plan.candidate.release_id if plan.candidate else None
        source = plan.production.release_id if plan.production else None
        out["audit_record"] = _write_record(
            client,
            root,
            "audit",
            {
                TAG_ACTION: plan.action,
                P.TAG_RELEASE: target or "",
                TAG_FROM: source or "",
                "labelcycle.at": at,
                "labelcycle.by": who,
                "labelcycle.forced": str(bool(plan.force and plan.failed)).lower(),
                "labelcycle.failed_gates": ",".join(g.name for g in plan.failed),
                "labelcycle.reason": (plan.reason or "")[:4000],
                "labelcycle.undoes": plan.undoes or "",
            },
            {"plan.json": record},
            run_name=f"{plan.action} {target or ''}".strip(),
        )
    except Exception as exc:
        try:
            _restore(client, root, plan)
        finally:
            if not isinstance(exc, LabelcycleError):
                raise TrackingError(
                    f"{plan.action} failed ({type(exc).__name__}: {exc}); the aliases, model "
                    "tags and git tags were put back as they were"
                ) from exc
        raise
    if plan.action == "rollback" and plan.undoes:
        client.set_tag(plan.undoes, TAG_UNDONE, "true")
        undone = release_record(client, plan.production.release_id) if plan.production else None
        if undone is not None:
            client.set_tag(undone.info.run_id, "labelcycle.rolled_back", at)
    return out


# ---------------------------------------------------------------- status


def status(root: Path) -> dict[str, Any] | None:
    """The production release as a dict (None when there is none)."""
    client = _client(root)
    rid = current_release_id(client, root)
    if rid is None:
        return None
    rel, _, record = load_release(client, rid)
    models = []
    for m in rel.models:
        models.append(
            {**m.to_dict(), "alias": f"models:/{m.name}@{P.ALIAS}", "alias_version": _alias(client, m.name)}
        )
    tags = vr.dataset_tags(root)
    raw_md5 = rel.dvc_hashes.get("data/raw")
    lineage = {
        "raw_batches": list(rel.raw_batches),
        "raw": {"path": "data/raw", "dvc_md5": raw_md5},
        "curated": {
            "path": "data/curated/dataset.parquet",
            "digest": rel.dataset_digest,
            "dvc_md5": rel.dvc_hashes.get("data/curated/dataset.parquet"),
        },
        "models": [f"{m.name} v{m.version} (run {m.run_id})" for m in rel.models]
        + [
            f"{path} (dvc md5 {md5}; not registered)"
            for path, md5 in sorted(rel.dvc_hashes.items())
            if path.startswith("models/")
            and path != "models/quality"
            and not any(m.role == path.split("/", 1)[1] for m in rel.models)
        ],
    }
    return {
        "release": rid,
        "promoted_at": rel.promoted_at,
        "forced": rel.forced,
        "source": rel.source,
        "release_record_run": record,
        "models": models,
        "dataset": {
            "digest": rel.dataset_digest,
            "git_tag": rid,
            "git_tag_commit": tags.get(rid),
            "git_rev": rel.git_rev,
            "dvc_hashes": dict(rel.dvc_hashes),
        },
        "evaluation": {
            "eval_digest": rel.eval_digest,
            "eval_items": rel.eval_items,
            "evaluate_run_id": rel.evaluate_run_id,
            "metrics": {k: {"value": v, **(rel.intervals.get(k) or {})} for k, v in rel.metrics.items()},
        },
        "lineage": lineage,
    }


def render_status(s: dict[str, Any] | None) -> str:
    if s is None:
        return "no production release yet; promote one with `labelcycle promote`"
    lines = [
        f"production release {s['release']} (promoted {s['promoted_at']}"
        + (", FORCED" if s["forced"] else "")
        + f"; from {s['source']})"
    ]
    lines.append("models:")
    for m in s["models"]:
        lines.append(
            f"  {m['role']:<8} {m['name']} v{m['version']} (run {m['run_id']}) = {m['alias']}"
            + ("" if m["alias_version"] == m["version"] else f"  [alias now at v{m['alias_version']}!]")
        )
    d = s["dataset"]
    lines.append(
        f"dataset: digest {d['digest']}; git tag {d['git_tag']} -> {(d['git_tag_commit'] or 'MISSING')[:10]} "
        f"(rev {(d['git_rev'] or '?')[:10]})"
    )
    for path, md5 in sorted(d["dvc_hashes"].items()):
        if path.startswith(("data/", "models/")):  # every output's hash: --json
            lines.append(f"  dvc {path}: {md5}")
    e = s["evaluation"]
    lines.append(
        f"metrics on eval split {e['eval_digest']} ({e['eval_items']} items; evaluate run "
        f"{e['evaluate_run_id']}):"
    )
    for k, v in e["metrics"].items():
        ci = f" [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" if "ci_low" in v else ""
        lines.append(f"  {k:<12} {v['value']:.4f}{ci}")
    li = s["lineage"]
    lines.append(
        "lineage: raw batches "
        + (", ".join(li["raw_batches"]) or "?")
        + f" -> data/raw ({li['raw']['dvc_md5']}) -> curated {li['curated']['digest']} "
        f"({li['curated']['dvc_md5']}) -> " + "; ".join(li["models"])
    )
    return "\n".join(lines)
