"""Self-agreement: how often an annotator gives the same label when judging the same item again.

Some deliveries repeat items on purpose (ConvAbuse has 357 such repeats) to measure how consistent each
annotator is with themself. Validation keeps one judgement per (item, annotator) for the consensus and
sets the others aside as repeats (:attr:`labelcycle.validation.ValidationResult.repeats`); this module
compares them.
"""

from __future__ import annotations

import pandas as pd

from labelcycle import schema

#: the columns of :func:`self_agreement`'s table, after ``annotator_id``
COLUMNS = ("repeat_judgements", "repeat_pairs", "repeat_pairs_agreeing", "self_agreement")


def self_agreement(kept: pd.DataFrame, repeats: pd.DataFrame | None) -> pd.DataFrame:
    """One row per annotator with repeats: their repeated (item, annotator) pairs and how many agree.

    Args:
        kept: the judgements that feed the consensus (``item_id, annotator_id, label``), one per pair.
        repeats: the further judgements of the same pairs (same columns), or None.

    Returns:
        ``annotator_id, repeat_judgements, repeat_pairs, repeat_pairs_agreeing, self_agreement`` sorted
        by annotator: ``repeat_judgements`` counts the rows in ``repeats``; a pair agrees when all its
        judgements (the kept one and the repeats) carry the same label; ``self_agreement`` is agreeing
        pairs / pairs. Empty (same columns) without repeats.
    """
    cols = [schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]
    if repeats is None or repeats.empty:
        out = pd.DataFrame({schema.ANNOTATOR_ID: pd.Series(dtype=str)})
        for c in COLUMNS:
            out[c] = pd.Series(dtype="float64" if c == "self_agreement" else "int64")
        return out
    pair = [schema.ITEM_ID, schema.ANNOTATOR_ID]
    rep = repeats[cols].astype(str)
    pairs = rep[pair].drop_duplicates()
    first = kept[cols].astype(str).merge(pairs, on=pair, how="inner")
    both = pd.concat([first, rep], ignore_index=True)
    per_pair = both.groupby(pair, sort=False)[schema.LABEL].nunique().eq(1).rename("agrees").reset_index()
    by = per_pair.groupby(schema.ANNOTATOR_ID)
    out = pd.DataFrame(
        {
            "repeat_judgements": rep.groupby(schema.ANNOTATOR_ID).size(),
            "repeat_pairs": by.size(),
            "repeat_pairs_agreeing": by["agrees"].sum().astype("int64"),
        }
    )
    out["self_agreement"] = out["repeat_pairs_agreeing"] / out["repeat_pairs"]
    return (
        out.rename_axis(schema.ANNOTATOR_ID).reset_index().sort_values(schema.ANNOTATOR_ID, ignore_index=True)
    )


def summary(table: pd.DataFrame) -> dict[str, object]:
    """The totals of a :func:`self_agreement` table (JSON-friendly): repeats, pairs, agreeing and
    disagreeing pairs, and the pooled rate (None without repeats)."""
    pairs = int(table["repeat_pairs"].sum()) if len(table) else 0
    agreeing = int(table["repeat_pairs_agreeing"].sum()) if len(table) else 0
    return {
        "repeats": int(table["repeat_judgements"].sum()) if len(table) else 0,
        "pairs": pairs,
        "agreeing": agreeing,
        "disagreeing": pairs - agreeing,
        "rate": agreeing / pairs if pairs else None,
    }


def describe(table: pd.DataFrame) -> str:
    """One line for people: ``self-agreement on repeats: 317 of 345 pairs agree (91.9%); ...``."""
    s = summary(table)
    if not s["pairs"]:
        return "self-agreement on repeats: no annotator judged an item twice"
    worst = table.sort_values(["self_agreement", schema.ANNOTATOR_ID]).head(3)
    lows = ", ".join(
        f"{r.annotator_id} {r.repeat_pairs_agreeing}/{r.repeat_pairs}" for r in worst.itertuples(index=False)
    )
    return (
        f"self-agreement on repeats: {s['agreeing']} of {s['pairs']} pairs agree ({s['rate']:.1%}; "
        f"{s['repeats']} repeated judgements, {s['disagreeing']} pairs disagree); lowest: {lows}"
    )


def with_self_agreement(table: pd.DataFrame, agreement: pd.DataFrame) -> pd.DataFrame:
    """The annotator table with the :func:`self_agreement` columns (0 pairs and no rate for annotators
    without repeats)."""
    out = table.drop(columns=[c for c in COLUMNS if c in table.columns]).merge(
        agreement, on=schema.ANNOTATOR_ID, how="left"
    )
    for c in COLUMNS[:3]:
        out[c] = out[c].fillna(0).astype("int64")
    return out
