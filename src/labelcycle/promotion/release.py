"""What a release is: one curated dataset version, the models trained on it, and the evaluation.

A release is the domain object. Its id is ``dataset/vN``; a git tag of the same name, registry aliases
and model-version tags, and a release record in MLflow are how it is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: prefix of release ids (``dataset/v1``, ``dataset/v2``, ...), which are also the names of their git tags
RELEASE_ID_PREFIX = "dataset/v"


def release_id(number: int) -> str:
    """The id of the ``number``-th release: 7 -> ``dataset/v7``."""
    return f"{RELEASE_ID_PREFIX}{int(number)}"


def release_number(rid: str | None) -> int | None:
    """``dataset/v7`` -> 7; anything else -> None."""
    if not rid or not rid.startswith(RELEASE_ID_PREFIX):
        return None
    tail = rid[len(RELEASE_ID_PREFIX) :]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class ModelRef:
    """A registered model version that belongs to a release.

    Attributes:
        role: what the model does in the pipeline (``quality``, ``error``).
        name: registered model name.
        version: registry version (as text).
        run_id: the MLflow run that trained it.
    """

    role: str
    name: str
    version: str
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "version": self.version, "run_id": self.run_id}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelRef:
        return cls(
            role=str(d["role"]),
            name=str(d["name"]),
            version=str(d["version"]),
            run_id=d.get("run_id") or None,
        )


@dataclass(frozen=True)
class Release:
    """A candidate or promoted release.

    Attributes:
        dataset_digest: full-content digest of the curated data set (``catalog.DATASET``).
        git_rev: the commit whose DVC files (``dvc.lock``, the raw data's ``.dvc``) describe the data.
        dvc_hashes: DVC md5 per path (every output DVC records).
        raw_batches: raw batch digests the curated data was built from (lineage).
        eval_digest: digest of the frozen gold eval split the models were judged on.
        metrics: headline metrics on the eval split.
        intervals: ``metric -> {"ci_low", "ci_high"}``.
        baseline: the majority-class baseline's metrics on the same eval split (empty: not recorded).
        models: registered model versions (quality, and error when present).
        source: where the candidate came from (``workspace``, ``run:<evaluate run id>``, ``git:<rev>``).
        evaluate_run_id: the MLflow run of the evaluation.
        pipeline_run: the ``labelcycle.pipeline_run`` tag of the evaluation.
        eval_items: number of eval items.
        release_id: ``dataset/vN`` once promoted.
        promoted_at: ISO time of the promotion.
        forced: promoted with ``--force``.
    """

    dataset_digest: str
    git_rev: str | None
    dvc_hashes: Mapping[str, str]
    raw_batches: tuple[str, ...]
    eval_digest: str | None
    metrics: Mapping[str, float]
    intervals: Mapping[str, Mapping[str, float]]
    models: tuple[ModelRef, ...]
    source: str = "workspace"
    evaluate_run_id: str | None = None
    pipeline_run: str | None = None
    eval_items: int | None = None
    release_id: str | None = None
    promoted_at: str | None = None
    forced: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    baseline: Mapping[str, float] = field(default_factory=dict)

    def identity(self) -> tuple:
        """Two releases are the same release when dataset, eval split and model versions agree."""
        return (
            self.dataset_digest,
            self.eval_digest,
            tuple(sorted((m.name, m.version) for m in self.models)),
        )

    def same_release(self, other: Release | None) -> bool:
        return other is not None and self.identity() == other.identity()

    def model(self, role: str) -> ModelRef | None:
        return next((m for m in self.models if m.role == role), None)

    def with_id(self, rid: str, promoted_at: str | None = None, forced: bool = False) -> Release:
        return replace(self, release_id=rid, promoted_at=promoted_at, forced=forced)

    def to_manifest(self) -> dict[str, Any]:
        return {
            "release": self.release_id,
            "promoted_at": self.promoted_at,
            "forced": self.forced,
            "source": self.source,
            "dataset": {
                "digest": self.dataset_digest,
                "git_rev": self.git_rev,
                "git_tag": self.release_id,
                "dvc_hashes": dict(sorted(self.dvc_hashes.items())),
                "raw_batches": list(self.raw_batches),
            },
            "models": [m.to_dict() for m in self.models],
            "evaluation": {
                "eval_digest": self.eval_digest,
                "eval_items": self.eval_items,
                "evaluate_run_id": self.evaluate_run_id,
                "pipeline_run": self.pipeline_run,
                "metrics": dict(self.metrics),
                "intervals": {k: dict(v) for k, v in self.intervals.items()},
                **({"baseline": dict(self.baseline)} if self.baseline else {}),
            },
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_manifest(cls, m: Mapping[str, Any]) -> Release:
        ds, ev = m.get("dataset") or {}, m.get("evaluation") or {}
        return cls(
            dataset_digest=str(ds.get("digest", "")),
            git_rev=ds.get("git_rev"),
            dvc_hashes=dict(ds.get("dvc_hashes") or {}),
            raw_batches=tuple(ds.get("raw_batches") or ()),
            eval_digest=ev.get("eval_digest"),
            metrics=dict(ev.get("metrics") or {}),
            intervals=dict(ev.get("intervals") or {}),
            models=tuple(ModelRef.from_dict(x) for x in m.get("models") or ()),
            source=str(m.get("source", "")),
            evaluate_run_id=ev.get("evaluate_run_id"),
            pipeline_run=ev.get("pipeline_run"),
            eval_items=ev.get("eval_items"),
            release_id=m.get("release"),
            promoted_at=m.get("promoted_at"),
            forced=bool(m.get("forced", False)),
            extra=dict(m.get("extra") or {}),
            baseline=dict(ev.get("baseline") or {}),
        )

    def describe(self) -> str:
        models = ", ".join(f"{m.name} v{m.version}" for m in self.models) or "no registered model"
        rev = (self.git_rev or "?")[:10]
        name = self.release_id or self.source
        return f"{name}: dataset {self.dataset_digest[:12]} @ git {rev}; {models}"
