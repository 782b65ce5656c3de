"""The fitted parameters of an aggregation, stored between runs so the next one can start from them.

One Parquet file: a row per (annotator, true class) with ``P(given | true)`` per given class, and the
method, label set, class priors and EM trace in the file's metadata. The aggregate stage writes it as a
versioned output and reads it back (``aggregate.warm_start``) when a new batch arrives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation.streaming import Fitted

_META_KEY = b"labelcycle.aggregate"
TRUE = "true_label"


def save(fitted: Fitted, path: Path) -> None:
    """Write ``fitted`` to ``path`` (Parquet) atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    k = len(fitted.classes)
    a = len(fitted.annotators)
    conf = fitted.confusions if fitted.confusions is not None else np.zeros((0, k, k))
    rows = conf.reshape(-1, k)
    n = len(rows)
    columns = {
        schema.ANNOTATOR_ID: np.repeat(np.asarray(fitted.annotators, dtype=object).astype(str), k)[:n]
        if a and n
        else np.array([], dtype=str),
        TRUE: np.tile(np.asarray(fitted.classes, dtype=object), len(conf)).astype(str),
    }
    for g, cls in enumerate(fitted.classes):
        columns[f"given_{cls}"] = rows[:, g]
    table = pa.table(columns)
    meta = {
        "method": fitted.method,
        "classes": list(fitted.classes),
        "priors": [float(p) for p in fitted.priors],
        "n_iter": fitted.n_iter,
        "converged": bool(fitted.converged),
        "warm_started": bool(fitted.warm_started),
        "voted": bool(fitted.voted),
    }
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def load(path: Path) -> Fitted:
    """The parameters saved at ``path``.

    Raises:
        StateError: the file is not a stored aggregation (what to do: delete it or set
            ``aggregate.warm_start: false``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labelcycle.errors import StateError

    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[_META_KEY])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        raise StateError(
            f"{path}: is not a stored aggregation ({exc}); delete it or set aggregate.warm_start: false"
        ) from None
    classes = tuple(meta["classes"])
    k = len(classes)
    frame = table.to_pandas()
    conf = (
        frame[[f"given_{c}" for c in classes]].to_numpy(np.float64).reshape(-1, k, k) if len(frame) else None
    )
    annotators = pd.Index(frame[schema.ANNOTATOR_ID].to_numpy()[::k] if k else [], name=schema.ANNOTATOR_ID)
    return Fitted(
        method=meta["method"],
        classes=classes,
        annotators=annotators,
        confusions=conf,
        priors=np.asarray(meta["priors"], dtype=np.float64),
        n_iter=int(meta["n_iter"]),
        converged=bool(meta["converged"]),
        warm_started=bool(meta["warm_started"]),
        voted=bool(meta["voted"]),
    )
