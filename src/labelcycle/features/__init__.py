"""Item features shared by both LightGBM models: column roles, text n-grams, embeddings (one pipeline)."""

from __future__ import annotations

from labelcycle.features.pipeline import FeaturePipeline, split_tuned
from labelcycle.features.roles import Embedding, Roles, check_batch_kinds, infer_roles

__all__ = ["Embedding", "FeaturePipeline", "Roles", "check_batch_kinds", "infer_roles", "split_tuned"]
