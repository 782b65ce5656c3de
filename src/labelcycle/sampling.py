"""Training-data sampling: a reproducible subset of the curated data set (pure; no I/O)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import SchemaError, ValidationError

STRATEGIES = ("uniform", "stratified")


def sample_training(dataset: pd.DataFrame, fraction: float, strategy: str, seed: int) -> pd.DataFrame:
    """A ``fraction`` of the rows of ``dataset``, in their original order.

    ``uniform`` draws rows without replacement; ``stratified`` draws the same fraction of every label
    (at least one row of each label present). ``fraction = 1`` returns every row unchanged, so the
    sample's digest equals the curated data set's.

    Raises:
        ValidationError: ``fraction`` outside ``(0, 1]`` or unknown ``strategy``.
        SchemaError: ``stratified`` on a table without ``label``.
    """
    if not 0 < fraction <= 1:
        raise ValidationError(f"sample.fraction must be in (0, 1], got {fraction}; fix params.yaml")
    if strategy not in STRATEGIES:
        raise ValidationError(
            f"sample.strategy must be one of {list(STRATEGIES)}, got {strategy!r}; fix params.yaml"
        )
    if fraction == 1 or dataset.empty:
        return dataset.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    if strategy == "uniform":
        k = max(1, round(fraction * len(dataset)))
        rows = np.sort(rng.choice(len(dataset), size=k, replace=False))
        return dataset.iloc[rows].reset_index(drop=True)
    if schema.LABEL not in dataset.columns:
        raise SchemaError(f"stratified sampling needs a {schema.LABEL!r} column; use strategy: uniform")
    codes, _ = pd.factorize(dataset[schema.LABEL], sort=True)
    picked = []
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        k = max(1, round(fraction * members.size))
        picked.append(rng.choice(members, size=k, replace=False))
    return dataset.iloc[np.sort(np.concatenate(picked))].reset_index(drop=True)
