"""The table contract: column names and dtypes of every table labelcycle reads or writes.

Three input tables:

* **annotations**: one row per (item, annotator) judgement. Required ``item_id``, ``annotator_id``,
  ``label``; optional ``created_at`` (timestamp), ``duration_s`` (seconds, >= 0), ``batch_id`` and
  ``guideline_version``.
* **items**: ``item_id`` plus feature columns. Numeric columns are features as numbers; every other
  column is a categorical feature.
* **gold**: ``item_id``, ``label`` from expert audit.

Identifiers and labels are strings everywhere (a label ``1`` in one file and ``1.0`` in another would
otherwise differ silently). Readers live in :mod:`labelcycle.readers`.
"""

from __future__ import annotations

from dataclasses import dataclass

ITEM_ID = "item_id"
ANNOTATOR_ID = "annotator_id"
LABEL = "label"
CREATED_AT = "created_at"
DURATION_S = "duration_s"
BATCH_ID = "batch_id"
GUIDELINE_VERSION = "guideline_version"

#: Added by the ingest stage: the content digest of the raw batch a row came from.
RAW_BATCH = "raw_batch"
#: Added by aggregation: the confidence of the aggregated label (its posterior probability).
CONFIDENCE = "confidence"
#: Prefix of the per-class probability columns (``proba_<class>``).
PROBA_PREFIX = "proba_"


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table kind: which are required, which optional, and their logical types."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    #: logical type per known column: "str", "float", "datetime"
    types: tuple[tuple[str, str], ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


ANNOTATIONS = TableSpec(
    name="annotations",
    required=(ITEM_ID, ANNOTATOR_ID, LABEL),
    optional=(CREATED_AT, DURATION_S, BATCH_ID, GUIDELINE_VERSION),
    types=(
        (ITEM_ID, "str"),
        (ANNOTATOR_ID, "str"),
        (LABEL, "str"),
        (CREATED_AT, "datetime"),
        (DURATION_S, "float"),
        (BATCH_ID, "str"),
        (GUIDELINE_VERSION, "str"),
    ),
)
ITEMS = TableSpec(name="items", required=(ITEM_ID,), types=((ITEM_ID, "str"),))
GOLD = TableSpec(name="gold", required=(ITEM_ID, LABEL), types=((ITEM_ID, "str"), (LABEL, "str")))

SPECS: dict[str, TableSpec] = {s.name: s for s in (ANNOTATIONS, ITEMS, GOLD)}


def proba_column(label: str) -> str:
    """Name of the probability column for one class."""
    return f"{PROBA_PREFIX}{label}"


def proba_columns(labels: list[str] | tuple[str, ...]) -> list[str]:
    """Probability column names for a label set, in label-set order."""
    return [proba_column(lab) for lab in labels]


def feature_columns(items_columns: list[str] | tuple[str, ...]) -> list[str]:
    """Feature columns of an items table: everything but the id."""
    return [c for c in items_columns if c != ITEM_ID]
