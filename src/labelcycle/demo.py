"""A realistic synthetic ads-moderation data set with known truth.

Items are ads with numeric and categorical features; each has a true class among ``ok``,
``misleading`` and ``prohibited`` drawn from a noisy function of the features (learnable, not
perfectly). Annotators come in kinds that real vendors know well:

* ``reliable``: high accuracy, errors between neighbouring classes;
* ``mediocre``: middling accuracy;
* ``spammer``: random clicks or always ``ok``, very fast;
* ``biased``: reliable, except that from week 5 on they label crypto ads as ``prohibited``
  (three of them, as if they had read the v2 guideline too strictly);
* ``fatigued``: accurate at the start of a session, worse as it goes on;
* ``fast_clicker``: short durations, leaning to ``ok``.

Activity is uneven (log-normal), items get 1 to 5 annotations, batches are weekly, the guideline
version changes from ``v1`` to ``v2`` in week 5 (under v1 borderline misleading ads were often called
``ok``), and an expert audit labels a gold subset. The truth tables are returned separately: the
pipeline never reads them; benchmarks and tests do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelcycle import schema

LABELS = ("ok", "misleading", "prohibited")
CATEGORIES = ("electronics", "fashion", "crypto", "health", "finance", "gaming", "travel", "food")
REGIONS = ("NA", "EU", "LATAM", "APAC", "MEA")
KINDS = ("reliable", "mediocre", "spammer", "biased", "fatigued", "fast_clicker")
N_WEEKS = 8
GUIDELINE_CHANGE_WEEK = 5
BIASED_CATEGORY = "crypto"
START = pd.Timestamp("2026-09-07T00:00:00Z")


@dataclass
class DemoData:
    """The public tables and the hidden truth."""

    annotations: pd.DataFrame
    items: pd.DataFrame
    gold: pd.DataFrame
    truth_items: pd.DataFrame  # item_id, true_label
    truth_annotators: pd.DataFrame  # annotator_id, kind
    truth_annotations: pd.DataFrame  # item_id, annotator_id, true_label, is_error


def _items(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    cat_p = np.array([0.18, 0.16, 0.10, 0.12, 0.12, 0.12, 0.10, 0.10])
    category = rng.choice(len(CATEGORIES), size=n, p=cat_p)
    region = rng.choice(len(REGIONS), size=n, p=[0.3, 0.25, 0.15, 0.2, 0.1])
    advertiser_age_days = np.round(rng.lognormal(5.0, 1.2, n), 0).astype(np.int64)
    price = np.round(rng.lognormal(3.5, 1.0, n), 2)
    price[rng.random(n) < 0.15] = np.nan  # not every ad shows a price
    text_length = rng.poisson(120, n) + rng.integers(0, 200, n)
    exclamations = rng.poisson(0.8, n)
    claims_score = rng.beta(2, 5, n)
    landing_quality = rng.beta(5, 2, n)
    prior_flags = rng.poisson(0.3, n)
    discount = rng.random(n) < 0.25

    risky = np.isin(category, [CATEGORIES.index(c) for c in ("crypto", "health", "finance")])
    z_mis = (
        -1.0
        + 4.0 * claims_score
        - 2.0 * landing_quality
        + 0.35 * exclamations
        + 0.8 * discount
        + 0.4 * (category == CATEGORIES.index("fashion"))
        + 0.3 * (region == REGIONS.index("LATAM"))
    )
    z_pro = (
        -3.5
        + 1.6 * risky
        + 0.9 * prior_flags
        - 0.35 * np.log1p(advertiser_age_days)
        + 2.5 * claims_score * risky
        + 0.4 * (region == REGIONS.index("MEA"))
    )
    logits = np.column_stack([np.zeros(n), z_mis, z_pro + 2.4])
    noisy = logits + rng.gumbel(0, 0.5, size=logits.shape)
    truth = noisy.argmax(axis=1)
    # difficulty: how close the runner-up class is (in the noiseless logits)
    srt = np.sort(logits, axis=1)
    margin = srt[:, -1] - srt[:, -2]
    items = pd.DataFrame(
        {
            schema.ITEM_ID: [f"ad-{i:06d}" for i in range(n)],
            "category": np.asarray(CATEGORIES)[category],
            "region": np.asarray(REGIONS)[region],
            "advertiser_age_days": advertiser_age_days,
            "price_usd": price,
            "text_length": text_length.astype(np.int64),
            "exclamation_count": exclamations.astype(np.int64),
            "claims_score": np.round(claims_score, 4),
            "landing_page_quality": np.round(landing_quality, 4),
            "prior_flags": prior_flags.astype(np.int64),
            "has_discount_claim": np.where(discount, "yes", "no"),
        }
    )
    return items, np.column_stack([truth, margin])


def _annotator_kinds(m: int, rng: np.random.Generator) -> np.ndarray:
    n_spam = max(2, round(0.06 * m))
    n_fast = max(1, round(0.08 * m))
    n_fat = max(1, round(0.10 * m))
    n_biased = 3 if m >= 12 else 0
    n_med = round(0.28 * m)
    n_rel = m - n_spam - n_fast - n_fat - n_biased - n_med
    kinds = np.array(
        ["reliable"] * n_rel
        + ["mediocre"] * n_med
        + ["spammer"] * n_spam
        + ["biased"] * n_biased
        + ["fatigued"] * n_fat
        + ["fast_clicker"] * n_fast
    )
    return rng.permutation(kinds)


def generate(
    n_items: int = 22_000, n_annotators: int = 120, seed: int = 0, gold_fraction: float = 0.05
) -> DemoData:
    """Generate the demo data set.

    Args:
        n_items: number of ads.
        n_annotators: number of annotators (at least 6).
        seed: random seed; the same seed gives the same data.
        gold_fraction: share of items in the expert audit (gold) subset.
    """
    if n_items < 10 or n_annotators < 6:
        from labelcycle.errors import ConfigError

        raise ConfigError("the demo needs at least 10 items and 6 annotators")
    rng = np.random.default_rng(seed)
    items, tm = _items(n_items, rng)
    truth = tm[:, 0].astype(np.int64)
    margin = tm[:, 1]
    k = len(LABELS)

    kinds = _annotator_kinds(n_annotators, rng)
    ann_ids = np.array([f"ann-{j:03d}" for j in range(n_annotators)])
    activity = rng.lognormal(0, 1.0, n_annotators)
    activity[kinds == "biased"] = np.maximum(activity[kinds == "biased"], np.median(activity) * 1.5)
    base_acc = np.select(
        [
            kinds == "reliable",
            kinds == "mediocre",
            kinds == "biased",
            kinds == "fatigued",
            kinds == "fast_clicker",
        ],
        [
            rng.uniform(0.88, 0.96, n_annotators),
            rng.uniform(0.66, 0.78, n_annotators),
            rng.uniform(0.88, 0.95, n_annotators),
            np.full(n_annotators, 0.93),
            rng.uniform(0.55, 0.65, n_annotators),
        ],
        default=1.0 / k,
    )

    # number of annotations per item (1..5), annotators drawn without replacement by activity (Gumbel top-k)
    n_per_item = rng.choice([1, 2, 3, 4, 5], size=n_items, p=[0.04, 0.08, 0.15, 0.30, 0.43])
    keys = np.log(activity)[None, :] + rng.gumbel(size=(n_items, n_annotators))
    order = np.argsort(-keys, axis=1)[:, :5]
    take = np.arange(5)[None, :] < n_per_item[:, None]
    item_idx = np.repeat(np.arange(n_items), n_per_item)
    ann_idx = order[take]
    n = len(item_idx)

    # time: each item is published in some week; judged within three days
    week = rng.integers(1, N_WEEKS + 1, n_items)
    published = (
        START
        + pd.to_timedelta((week - 1) * 7, unit="D")
        + pd.to_timedelta(rng.uniform(0, 4 * 86400, n_items), unit="s")
    )
    created = published[item_idx] + pd.to_timedelta(rng.uniform(600, 3 * 86400, n), unit="s")
    a_week = np.minimum(((created - START).days // 7 + 1).to_numpy(), N_WEEKS + 1)
    guideline = np.where(a_week >= GUIDELINE_CHANGE_WEEK, "v2", "v1")

    # session position: rank of the judgement within the annotator's day
    day = (created - START).days.to_numpy()
    frame = pd.DataFrame({"a": ann_idx, "day": day, "t": created.asi8})
    position = frame.groupby(["a", "day"])["t"].rank(method="first").to_numpy().astype(np.int64) - 1

    t = truth[item_idx]
    kind = kinds[ann_idx]
    acc = base_acc[ann_idx].copy()
    hard = np.exp(-margin[item_idx])  # near 1 for borderline items
    acc = np.where(kind == "spammer", acc, acc - 0.2 * hard * (1 - acc) - 0.05 * hard)
    acc = np.where(kind == "fatigued", np.maximum(0.93 - 0.035 * position, 0.45), acc)
    correct = rng.random(n) < acc
    # errors go mostly to a neighbouring class
    step = np.where(rng.random(n) < 0.8, 1, 2) * np.where(rng.random(n) < 0.5, -1, 1)
    wrong = np.clip(t + step, 0, k - 1)
    wrong = np.where(wrong == t, np.where(t == 0, 1, t - 1), wrong)
    given = np.where(correct, t, wrong)
    # fast clickers lean to ok when wrong
    fc = (kind == "fast_clicker") & ~correct
    given = np.where(fc & (rng.random(n) < 0.7), 0, given)
    # spammers: half click uniformly at random, half always say ok
    spam = kind == "spammer"
    constant = (ann_idx % 2) == 0
    given = np.where(spam & constant, 0, np.where(spam, rng.integers(0, k, n), given))
    # guideline v1: borderline misleading ads were often called ok
    v1_lenient = (guideline == "v1") & (t == 1) & (hard > 0.5) & ~spam & (rng.random(n) < 0.35)
    given = np.where(v1_lenient, 0, given)
    # biased group: crypto ads called prohibited from week 5 on
    cat = items["category"].to_numpy()[item_idx]
    biased = (kind == "biased") & (cat == BIASED_CATEGORY) & (a_week >= GUIDELINE_CHANGE_WEEK) & (t != 2)
    given = np.where(biased & (rng.random(n) < 0.75), 2, given)

    base_dur = np.select([kind == "spammer", kind == "fast_clicker"], [2.0, 4.0], default=18.0)
    duration = np.round(base_dur * (1 + hard) * rng.lognormal(0, 0.35, n), 2)

    annotations = pd.DataFrame(
        {
            schema.ITEM_ID: items[schema.ITEM_ID].to_numpy()[item_idx],
            schema.ANNOTATOR_ID: ann_ids[ann_idx],
            schema.LABEL: np.asarray(LABELS)[given],
            schema.CREATED_AT: created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            schema.DURATION_S: duration,
            schema.BATCH_ID: [f"week-{w:02d}" for w in a_week],
            schema.GUIDELINE_VERSION: guideline,
        }
    ).sort_values([schema.CREATED_AT, schema.ITEM_ID, schema.ANNOTATOR_ID], kind="stable")
    truth_ann = pd.DataFrame(
        {
            schema.ITEM_ID: annotations[schema.ITEM_ID].to_numpy(),
            schema.ANNOTATOR_ID: annotations[schema.ANNOTATOR_ID].to_numpy(),
            "true_label": np.asarray(LABELS)[t][annotations.index.to_numpy()],
            "annotator_kind": kind[annotations.index.to_numpy()],
        }
    )
    truth_ann["is_error"] = truth_ann["true_label"] != annotations[schema.LABEL].to_numpy()
    annotations = annotations.reset_index(drop=True)

    n_gold = max(1, round(gold_fraction * n_items))
    gold_idx = np.sort(rng.choice(n_items, size=n_gold, replace=False))
    gold = pd.DataFrame(
        {
            schema.ITEM_ID: items[schema.ITEM_ID].to_numpy()[gold_idx],
            schema.LABEL: np.asarray(LABELS)[truth[gold_idx]],
        }
    )
    truth_items = pd.DataFrame(
        {schema.ITEM_ID: items[schema.ITEM_ID], "true_label": np.asarray(LABELS)[truth], "margin": margin}
    )
    truth_annotators = pd.DataFrame(
        {schema.ANNOTATOR_ID: ann_ids, "kind": kinds, "activity": activity, "base_accuracy": base_acc}
    )
    return DemoData(annotations, items, gold, truth_items, truth_annotators, truth_ann)
