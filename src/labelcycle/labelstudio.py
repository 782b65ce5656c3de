"""Label Studio round trip: review tasks out, completed annotations back in (pure: no files, no printing).

Out: :func:`tasks_from_sheet` turns a review sheet (:func:`labelcycle.detection.review.export_sheet`)
into Label Studio tasks: the item's fields as ``data`` (text as text, numbers as numbers, anything
else as a string; keys made safe for ``$variables``), the item id under ``data.item_id``, labelcycle's
context under ``lc_*`` keys (current label, labels seen, priority, consensus probabilities), and one
prediction holding the consensus label with its probability as ``score`` and a ``model_version``
naming the consensus it came from, so reviewers start from a suggestion. :func:`label_config` is the
labeling interface to create the project with (Choices over the label set, Text for the text column).

In: :func:`load_export` parses the bytes of a Label Studio JSON export (``Export > JSON``, or the
``/api/projects/<id>/export?exportType=JSON`` endpoint) and :func:`judgements_from_export` turns its
completed annotations into judgements, one per (item, reviewer), each by ``reviewer:<email>`` (or
``reviewer:labelstudio-user-<id>``). Every task or annotation that does not become a judgement is in the rejected table with a
reason: :data:`SET_ASIDE` reasons are normal review outcomes (not annotated, skipped, superseded);
the others are faults that :func:`check_rejected` refuses with a message saying what to fix.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.detection.review import CURRENT, REVIEW_COLUMNS, reviewer_annotator_id
from labelcycle.errors import InputFileError, SchemaError, ValidationError

#: name of the Choices control in :func:`label_config` (the ``from_name`` of predictions and results)
CONTROL = "label"
#: the data key holding the item id
ITEM_KEY = schema.ITEM_ID
#: prefix of the data keys labelcycle adds beside the item's own fields
CONTEXT_PREFIX = "lc_"
#: the data key of the readable suggestion (consensus probabilities, labels seen)
SUGGESTION_KEY = "lc_suggestion"
#: reviewer id of a Label Studio user known by id only (``reviewer:labelstudio-user-7``)
USER_PREFIX = "labelstudio-user-"
#: batch id of the judgements: ``labelstudio-<project id>`` (``review-<date>`` when tasks name no project)
BATCH_PREFIX = "labelstudio-"

#: rejection reasons that are normal outcomes of a review round, reported and set aside
SET_ASIDE = {
    "not_annotated": "tasks nobody annotated",
    "cancelled": "annotations skipped by the reviewer (was_cancelled)",
    "superseded": "earlier submissions by the same reviewer for the same item (the latest is kept)",
    "already_imported": "annotations imported before from an earlier export",
}
#: rejection reasons that are faults of the export: the import is refused (what to do, per reason)
FAULTS = {
    "no_item_id": f"tasks without data.{ITEM_KEY}: import only tasks made by `labelcycle review export "
    "--format label-studio`",
    "unknown_item": "items that are not in this project: import the export into the project that made the "
    "tasks (--repo DIR)",
    "unknown_label": "labels outside the label set: add them to ingest.labels in params.yaml, or fix the "
    "project's labeling config and the annotations",
    "no_label": "submitted annotations that chose no label: make the choice required in the labeling "
    "config and annotate them again",
    "several_labels": 'annotations with more than one label: use choice="single" in the labeling config',
    "no_reviewer": "annotations without completed_by: pass --reviewer ID to name the reviewer",
}
REJECTED_COLUMNS = ["task_id", "annotation_id", schema.ITEM_ID, "reviewer", "reason", "detail"]

_VARIABLE = re.compile(r"[^0-9A-Za-z_]")


def data_key(name: object) -> str:
    """A column name as a Label Studio data key usable as ``$key`` (other characters become ``_``)."""
    key = _VARIABLE.sub("_", str(name)) or "_"
    return f"_{key}" if key[0].isdigit() else key


def object_name(text_columns: Sequence[str]) -> str:
    """The ``toName`` of the Choices control: the first text column's key, else ``item``."""
    return data_key(text_columns[0]) if text_columns else "item"


def _json_value(value: object, text: bool = False) -> object:
    """A cell as JSON: None for missing, numbers as numbers, everything else (and text) as a string."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return None
    if not text and isinstance(value, bool | np.bool_):
        return bool(value)
    if not text and isinstance(value, int | np.integer):
        return int(value)
    if not text and isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, list | tuple | np.ndarray):
        return str(list(value))
    if value is pd.NaT:
        return None
    return str(value)


def tasks_from_sheet(
    sheet: pd.DataFrame,
    classes: Sequence[str],
    *,
    text_columns: Sequence[str] = (),
    probabilities: pd.DataFrame | None = None,
    model_version: str = "labelcycle consensus",
) -> list[dict]:
    """Label Studio tasks, one per sheet row, each with the consensus as a prediction.

    Args:
        sheet: the review sheet (``item_id``, the review columns of
            :data:`~labelcycle.detection.review.REVIEW_COLUMNS` and the item's fields).
        classes: the label set (the order of the ``lc_proba_*`` keys).
        text_columns: the item columns that are free text (kept as text, shown by :func:`label_config`).
        probabilities: the consensus per item (``item_id, proba_<class>...``), or None.
        model_version: names the consensus (method, data version) the suggestion comes from.

    Returns:
        ``[{"data": {...}, "predictions": [{"model_version", "score", "result"}]}, ...]`` in sheet order.

    Raises:
        SchemaError: the sheet has no ``item_id`` or ``current_label``; two columns map to one data key.
    """
    missing = [c for c in (schema.ITEM_ID, CURRENT) if c not in sheet.columns]
    if missing:
        raise SchemaError(f"the review sheet lacks the column(s) {missing}; make it with export_sheet")
    fields = [c for c in sheet.columns if c != schema.ITEM_ID and c not in REVIEW_COLUMNS]
    context = [c for c in sheet.columns if c in REVIEW_COLUMNS and c not in ("review_label", "reviewer_id")]
    keys = {c: data_key(c) for c in fields} | {c: CONTEXT_PREFIX + c for c in context}
    taken: dict[str, str] = {ITEM_KEY: schema.ITEM_ID, SUGGESTION_KEY: SUGGESTION_KEY}
    taken |= {f"{CONTEXT_PREFIX}proba_{data_key(c)}": schema.proba_column(c) for c in classes}
    for col, key in keys.items():
        if key in taken:
            raise SchemaError(
                f"item columns {taken[key]!r} and {col!r} both become the Label Studio data key {key!r}; "
                "rename one of them"
            )
        taken[key] = col
    proba_cols = schema.proba_columns(classes)
    proba = None
    if probabilities is not None and set(proba_cols) <= set(probabilities.columns):
        proba = probabilities.assign(**{schema.ITEM_ID: probabilities[schema.ITEM_ID].astype(str)}).set_index(
            schema.ITEM_ID
        )[proba_cols]
    to_name, text = object_name(text_columns), set(text_columns)
    tasks = []
    for row in sheet.to_dict(orient="records"):
        item, current = str(row[schema.ITEM_ID]), str(row[CURRENT])
        data: dict[str, object] = {ITEM_KEY: item}
        data.update({keys[c]: _json_value(row[c], text=c in text) for c in fields + context})
        score = None
        if proba is not None and item in proba.index:
            p = proba.loc[item].astype("float64")
            data.update(
                {
                    f"{CONTEXT_PREFIX}proba_{data_key(c)}": round(float(v), 6)
                    for c, v in zip(classes, p, strict=True)
                }
            )
            shown = ", ".join(
                f"{c} {v:.2f}" for c, v in sorted(zip(classes, p, strict=True), key=lambda t: -t[1])
            )
            data[SUGGESTION_KEY] = f"consensus: {shown}"
            score = round(float(p.iloc[list(classes).index(current)]), 6) if current in classes else None
        else:
            data[SUGGESTION_KEY] = f"consensus: {current}"
        if row.get("labels_seen"):
            data[SUGGESTION_KEY] = f"{data[SUGGESTION_KEY]} (labels seen {row['labels_seen']})"
        prediction: dict[str, object] = {
            "model_version": model_version,
            "result": [
                {"from_name": CONTROL, "to_name": to_name, "type": "choices", "value": {"choices": [current]}}
            ],
        }
        if score is not None:
            prediction["score"] = score
        tasks.append({"data": data, "predictions": [prediction]})
    return tasks


def label_config(classes: Sequence[str], text_columns: Sequence[str] = ()) -> str:
    """The labeling config XML to create the Label Studio project with.

    One ``Text`` per text column (the first is what the choice is about; without text columns the item
    id is shown), the suggestion line, and ``Choices`` (single, required) over ``classes``.
    """
    objects = [
        f"  <Text name={quoteattr(data_key(c))} value={quoteattr('$' + data_key(c))}/>" for c in text_columns
    ]
    if not objects:
        objects = [f'  <Text name="item" value="${ITEM_KEY}"/>']
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return "\n".join(
        [
            "<View>",
            *objects,
            f'  <Text name="suggestion" value="${SUGGESTION_KEY}"/>',
            f'  <Choices name="{CONTROL}" toName={quoteattr(object_name(text_columns))} choice="single" '
            'showInLine="true" required="true">',
            choices,
            "  </Choices>",
            "</View>",
            "",
        ]
    )


def is_export(raw: bytes, extension: str) -> bool:
    """Whether a file is (meant as) a Label Studio JSON export: a ``.json`` extension, or a JSON array."""
    return extension.lower() == ".json" or raw.lstrip()[:1] == b"["


def load_export(raw: bytes, source: str) -> list[dict]:
    """The tasks of a Label Studio JSON export.

    Raises:
        InputFileError: not JSON (with line, column and character position), not a list of tasks, or a
            JSON-MIN / CSV style export (flat rows without ``annotations``).
    """
    try:
        export = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{source}: not UTF-8 text (byte {exc.start}); export the project again from Label Studio as JSON"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos}): "
            f"{exc.msg}; export the project again from Label Studio (Export > JSON)"
        ) from None
    if not isinstance(export, list):
        raise InputFileError(
            f"{source}: expected a list of tasks (Label Studio's JSON export), got a JSON "
            f"{type(export).__name__}; export the project with Export > JSON"
        )
    for n, task in enumerate(export):
        if not isinstance(task, dict) or "data" not in task:
            what = "no JSON object" if not isinstance(task, dict) else "no 'data'"
            raise InputFileError(
                f"{source}: task {n} (0-based) has {what}; this is not Label Studio's JSON export (JSON-MIN "
                "and CSV exports lack the annotations): export the project with Export > JSON"
            )
    return export


def _reviewer(completed_by: object) -> str:
    """The reviewer of an annotation: the user's email when the export has it (older exports give the
    user), else ``labelstudio-user-<id>`` (Label Studio 1.23 exports give the user id only)."""
    if isinstance(completed_by, dict):
        if completed_by.get("email"):
            return str(completed_by["email"]).strip()
        completed_by = completed_by.get("id")
    if completed_by is None or str(completed_by).strip() == "":
        return ""
    return f"{USER_PREFIX}{str(completed_by).strip()}"


def _choices(result: object) -> list[str]:
    """The labels an annotation chose: the ``choices`` of its choices results (ours first)."""
    found = [r for r in result or [] if isinstance(r, dict) and r.get("type") == "choices"]
    ours = [r for r in found if r.get("from_name") == CONTROL] or found
    return [str(c) for r in ours for c in (r.get("value") or {}).get("choices") or []]


def _when(annotation: dict) -> pd.Timestamp:
    for key in ("updated_at", "created_at"):
        t = pd.to_datetime(annotation.get(key), utc=True, errors="coerce")
        if not pd.isna(t):
            return t
    return pd.NaT


def judgements_from_export(
    export: Iterable[dict],
    labels: Sequence[str],
    known_items: Iterable[object],
    *,
    default_reviewer: str | None = None,
    imported: pd.DataFrame | None = None,
    now: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judgements from a Label Studio JSON export: one per (item, reviewer), the latest submission.

    Args:
        export: the tasks (:func:`load_export`).
        labels: the label set.
        known_items: item ids the project knows.
        default_reviewer: reviewer of annotations without ``completed_by``.
        imported: judgements imported before (``item_id, annotator_id, label, created_at``): the same
            judgement in a later export of the project is set aside as ``already_imported``.
        now: timestamp of judgements without ``updated_at``/``created_at``, and of the batch id of
            tasks that name no Label Studio project (default: now, UTC).

    Returns:
        ``(judgements, rejected)``. ``judgements``: ``item_id, annotator_id, label, created_at,
        duration_s, batch_id`` (annotator ``reviewer:<email>`` or ``reviewer:labelstudio-user-<id>``, ``created_at`` the submission's
        ``updated_at``, ``duration_s`` its ``lead_time``, ``batch_id`` ``labelstudio-<project id>``). ``rejected``: one row per task without an
        annotation and per annotation not used, with ``reason`` (a key of :data:`SET_ASIDE` or
        :data:`FAULTS`) and ``detail``.
    """
    now = now or pd.Timestamp.now(tz="UTC")
    known = {str(i) for i in known_items}
    classes = {str(c) for c in labels}
    before: set[tuple[str, ...]] = set()
    if imported is not None and len(imported):
        cols = [schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL, schema.CREATED_AT]
        before = set(imported[cols].astype(str).itertuples(index=False, name=None))
    rejected: list[dict] = []
    submitted: list[dict] = []

    def reject(task: dict, ann: dict | None, item: str | None, who: str | None, reason: str, detail: str):
        rejected.append(
            {
                "task_id": task.get("id"),
                "annotation_id": None if ann is None else ann.get("id"),
                schema.ITEM_ID: item,
                "reviewer": who,
                "reason": reason,
                "detail": detail,
            }
        )

    for task in export:
        raw_item = (task.get("data") or {}).get(ITEM_KEY)
        item = None if raw_item is None or str(raw_item).strip() == "" else str(raw_item)
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        if not annotations:
            reject(task, None, item, None, "not_annotated", "no annotation was submitted")
            continue
        if item is None:
            reject(task, None, None, None, "no_item_id", f"task {task.get('id')} has no data.{ITEM_KEY}")
            continue
        for ann in annotations:
            who = _reviewer(ann.get("completed_by")) or (default_reviewer or "")
            if ann.get("was_cancelled"):
                reject(task, ann, item, who, "cancelled", "skipped by the reviewer")
            elif not who:
                reject(task, ann, item, None, "no_reviewer", "the annotation has no completed_by")
            else:
                submitted.append({"task": task, "ann": ann, "item": item, "who": who, "when": _when(ann)})
    # one judgement per (item, reviewer): the latest updated_at (then created_at, then annotation id)
    submitted.sort(key=_submission_order)
    latest: dict[tuple[str, str], dict] = {}
    for s in submitted:
        latest[(s["item"], s["who"])] = s
    rows = []
    for s in submitted:
        task, ann, item, who = s["task"], s["ann"], s["item"], s["who"]
        kept = latest[(item, who)]
        if kept is not s:
            reject(
                task,
                ann,
                item,
                who,
                "superseded",
                f"reviewer {who!r} also submitted annotation {kept['ann'].get('id')} (task {kept['task'].get('id')}, "
                f"{_stamp(kept['when'])}) for item {item!r}; the latest is kept",
            )
            continue
        chosen = _choices(ann.get("result"))
        if not chosen:
            reject(task, ann, item, who, "no_label", "the annotation chose no label")
        elif len(set(chosen)) > 1:
            reject(task, ann, item, who, "several_labels", f"the annotation chose {chosen}")
        elif chosen[0] not in classes:
            reject(task, ann, item, who, "unknown_label", f"label {chosen[0]!r} is not one of {list(labels)}")
        elif item not in known:
            reject(task, ann, item, who, "unknown_item", f"item {item!r} is not in the project")
        else:
            row = (
                item,
                reviewer_annotator_id(who),
                chosen[0],
                _stamp(s["when"] if not pd.isna(s["when"]) else now),
            )
            if row in before:
                reject(
                    task,
                    ann,
                    item,
                    who,
                    "already_imported",
                    f"{row[1]} {row[2]!r} of {row[3]} is in an earlier batch",
                )
                continue
            lead = pd.to_numeric(ann.get("lead_time"), errors="coerce")
            project = task.get("project")
            rows.append(
                {
                    **dict(
                        zip(
                            [schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL, schema.CREATED_AT],
                            row,
                            strict=True,
                        )
                    ),
                    schema.DURATION_S: float(lead) if not pd.isna(lead) else np.nan,
                    schema.BATCH_ID: f"{BATCH_PREFIX}{project}"
                    if project is not None
                    else f"review-{now:%Y%m%d}",
                }
            )
    judgements = pd.DataFrame(
        rows,
        columns=[
            schema.ITEM_ID,
            schema.ANNOTATOR_ID,
            schema.LABEL,
            schema.CREATED_AT,
            schema.DURATION_S,
            schema.BATCH_ID,
        ],
    )
    return judgements, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def _submission_order(s: dict) -> tuple:
    """Submissions of one reviewer for one item, oldest first: by time, then by annotation id."""
    when = s["when"] if not pd.isna(s["when"]) else pd.Timestamp.min.tz_localize("UTC")
    ann_id = pd.to_numeric(s["ann"].get("id"), errors="coerce")
    return (s["item"], s["who"], when, -np.inf if pd.isna(ann_id) else float(ann_id), str(s["ann"].get("id")))


def _stamp(t: pd.Timestamp) -> str:
    return "unknown time" if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_rejected(judgements: pd.DataFrame, rejected: pd.DataFrame, source: str) -> str:
    """Refuse an export with faults; else the set-aside summary (``"3 cancelled, 1 superseded"``).

    An export whose every judgement was imported before is not refused (``judgements`` is empty: nothing new).

    Raises:
        ValidationError: some annotation has a :data:`FAULTS` reason (each reason counted, with up to three
            examples and what to do), or no annotation became a judgement and none was imported before.
    """
    faults = rejected[rejected["reason"].isin(list(FAULTS))]
    if len(faults):
        parts = []
        for reason, g in faults.groupby("reason", sort=True):
            examples = "; ".join(f"task {r.task_id}: {r.detail}" for r in g.head(3).itertuples())
            more = f"; and {len(g) - 3} more" if len(g) > 3 else ""
            parts.append(f"{len(g)} {FAULTS[reason]} ({examples}{more})")
        raise ValidationError(
            f"{source}: {len(faults)} annotation(s) cannot be imported: " + " | ".join(parts)
        )
    aside = set_aside_summary(rejected)
    if judgements.empty and not (rejected["reason"] == "already_imported").any():
        raise ValidationError(
            f"{source}: no completed annotation to import ({aside or 'the export has no tasks'}); annotate "
            "the tasks in Label Studio, export the project as JSON and import again"
        )
    return aside


def set_aside_summary(rejected: pd.DataFrame) -> str:
    """``"2 tasks nobody annotated, 1 annotations skipped ..."``: the set-aside counts, in words."""
    counts = rejected["reason"].value_counts()
    return ", ".join(f"{int(counts[r])} {what}" for r, what in SET_ASIDE.items() if r in counts)
