"""Per-annotation features for the error model, computed without leakage.

Every feature of an annotation is a function of its *context* (everything except its own label) and of
the label it gives. The context is built so that the annotation's own label cannot reach it:

* **Cross-fitting over items.** Items are hashed into ``n_folds`` folds (by id alone, so folds never
  depend on labels). For the annotations on fold ``f`` items, everything *learned from labels* is learned
  on the other folds only: the aggregator (``make_aggregator``) and a few Dawid-Skene EM steps give the
  annotators' confusion matrices, skills and the class prior; a LightGBM quality model trained on the
  other folds' consensus gives the item's class probabilities. It reads the items through the quality
  model's own feature pipeline (:class:`labelcycle.features.FeaturePipeline`: text n-grams, embeddings,
  categorical and numeric columns), fitted on the other folds' items only.
* **Leave-one-out on the item.** Agreement, entropy and the posterior of the true class on the item are
  computed from the *other* annotations on the item only.
* **Given-label lookups.** Features that depend on the given label (the annotator's recall and
  precision for it, the model's probability of it, the other annotators' support for it) are read from
  per-class vectors of the context at the given label: :func:`annotation_context` returns those vectors,
  and :func:`features_from_context` only indexes them.

Gold labels are not an argument of anything here: they cannot reach a feature. Identifiers are never
features. Behaviour features (duration, position in the annotator's session, hour of day, batch,
guideline version) use no labels at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation import DEFAULT_METHOD, make_aggregator
from labelcycle.errors import SchemaError
from labelcycle.params import FeatureParams, FeaturesParams
from labelcycle.split import hash_unit

FOLD_SALT = "labelcycle-detection-folds"
EPS = 1e-9

#: label-free scalar context columns that are model features
SCALAR_FEATURES = (
    "ann_n_oof",
    "ann_skill",
    "ann_label_entropy",
    "n_annotations",
    "n_others",
    "others_entropy",
    "others_post_max",
    "model_proba_max",
    "duration_s",
    "duration_rel",
    "ann_median_duration",
    "session_position",
    "hour_of_day",
)
#: per-class context vectors (``<name>__<class>``); each gives a feature ``<name>_given`` at the given label
PER_CLASS = (
    "others_share",  # share of the other annotations on the item that give this class
    "others_post",  # posterior of the true class from the other annotations (cross-fitted confusions)
    "full_post",  # posterior that the true class is this one if the annotation gave it
    "model_proba",  # cross-fitted quality-model probability of this class
    "ann_recall",  # annotator's estimated P(says c | true c)
    "ann_precision",  # annotator's estimated P(true c | says c)
    "ann_rate",  # how often the annotator says c
)
CATEGORICAL_FEATURES = ("given_label", schema.BATCH_ID, schema.GUIDELINE_VERSION)
#: extra given-label indicators
GIVEN_FLAGS = ("others_top_is_given", "model_top_is_given")


def item_folds(item_ids: pd.Series | np.ndarray, n_folds: int, salt: str = FOLD_SALT) -> np.ndarray:
    """Fold number per item id: a salted hash of the id alone (never of labels)."""
    return np.minimum(
        (hash_unit(pd.Series(item_ids).astype(str), salt) * n_folds).astype(np.int64), n_folds - 1
    )


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


def dawid_skene_em(
    item: np.ndarray,
    ann: np.ndarray,
    lab: np.ndarray,
    init: np.ndarray,
    n_annotators: int,
    iterations: int,
    smoothing: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few Dawid-Skene EM steps from initial posteriors.

    Args:
        item, ann, lab: integer codes per annotation (items ``0..n_items-1`` index ``init``).
        init: items x classes starting posteriors.
        n_annotators: number of annotator codes.
        iterations: EM steps (0 returns the M-step of ``init``).
        smoothing: pseudo-count added to every confusion cell.

    Returns:
        ``(posteriors, confusions, prior)``: items x classes, annotators x true x given, classes.
    """
    post = init.copy()
    k = init.shape[1]
    for step in range(iterations + 1):
        counts = np.full((n_annotators, k, k), smoothing)
        np.add.at(counts, (ann, slice(None), lab), post[item])
        conf = counts / counts.sum(axis=2, keepdims=True)
        prior = post.mean(axis=0) + EPS
        prior = prior / prior.sum()
        if step == iterations:
            break
        logp = np.tile(np.log(prior), (post.shape[0], 1))
        np.add.at(logp, item, np.log(conf[ann, :, lab]))
        logp -= logp.max(axis=1, keepdims=True)
        post = np.exp(logp)
        post /= post.sum(axis=1, keepdims=True)
    return post, conf, prior


def loo_sum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values`` over the *other* rows of its group.

    Computed from exclusive prefix and suffix sums *within the group* (a dense groups x size x ...
    layout), so that neither the row's own value nor any value of another group enters its result, not
    even through rounding (``total - own`` would leak the own value in the last bits).
    """
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if len(g) else np.zeros(0, dtype=np.int64)
    size = np.diff(np.r_[starts, len(g)])
    slot = np.arange(len(g)) - np.repeat(starts, size)
    grp = np.repeat(np.arange(len(starts)), size)
    dense = np.zeros((len(starts), int(size.max()) if len(size) else 0, *values.shape[1:]))
    dense[grp, slot] = values[order]
    zero = np.zeros_like(dense[:, :1])
    prefix = np.concatenate([zero, np.cumsum(dense, axis=1)[:, :-1]], axis=1)
    suffix = np.concatenate([np.cumsum(dense[:, ::-1], axis=1)[:, ::-1][:, 1:], zero], axis=1)
    out = np.empty_like(values, dtype=np.float64)
    out[order] = (prefix + suffix)[grp, slot]
    return out


def _check(annotations: pd.DataFrame, classes: tuple[str, ...]) -> None:
    missing = [c for c in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL) if c not in annotations.columns]
    if missing:
        raise SchemaError(f"annotations lack the column(s) {missing}; expected item_id, annotator_id, label")
    unknown = sorted(set(annotations[schema.LABEL].astype(str)) - set(classes))
    if unknown:
        raise SchemaError(f"labels {unknown[:5]} are not in the label set {list(classes)}")
    if annotations.duplicated([schema.ITEM_ID, schema.ANNOTATOR_ID]).any():
        raise SchemaError(
            "annotations hold duplicate (item_id, annotator_id) rows; keep one judgement per annotator and item "
            "(the ingest stage does this)"
        )


def _behaviour(annotations: pd.DataFrame) -> pd.DataFrame:
    """Label-free behaviour features, one row per annotation."""
    n = len(annotations)
    out = pd.DataFrame(index=annotations.index)
    ann = annotations[schema.ANNOTATOR_ID].astype(str)
    if schema.DURATION_S in annotations.columns:
        dur = pd.to_numeric(annotations[schema.DURATION_S], errors="coerce").astype("float64")
        med = dur.groupby(ann).transform("median")
        out["duration_s"] = dur
        out["ann_median_duration"] = med
        out["duration_rel"] = dur / med.where(med > 0)
    else:
        out["duration_s"] = out["ann_median_duration"] = out["duration_rel"] = np.full(n, np.nan)
    if schema.CREATED_AT in annotations.columns:
        ts = pd.to_datetime(annotations[schema.CREATED_AT], errors="coerce", utc=True)
        day = ts.dt.floor("D")
        key = pd.DataFrame({"a": ann, "d": day, "t": ts})
        out["session_position"] = key.groupby(["a", "d"])["t"].rank(method="first").to_numpy() - 1.0
        out["hour_of_day"] = (ts.dt.hour + ts.dt.minute / 60.0).astype("float64")
    else:
        out["session_position"] = out["hour_of_day"] = np.full(n, np.nan)
    for col in (schema.BATCH_ID, schema.GUIDELINE_VERSION):
        values = annotations[col] if col in annotations.columns else pd.Series(None, index=annotations.index)
        out[col] = np.asarray(values.astype(object).where(values.notna(), None), dtype=object)
    return out


def _quality_fold(
    items: pd.DataFrame,
    train_ids: np.ndarray,
    train_labels: np.ndarray,
    predict_ids: np.ndarray,
    classes: tuple[str, ...],
    params: FeatureParams,
    item_features: FeaturesParams | None = None,
) -> np.ndarray:
    """Quality-model probabilities for ``predict_ids``, trained on ``train_ids`` only (NaN without features).

    The model's feature pipeline (text vocabularies included) is fitted on the training items only.
    """
    from labelcycle.quality.model import train

    k = len(classes)
    out = np.full((len(predict_ids), k), np.nan)
    feat = items.set_index(schema.ITEM_ID)
    tr = feat.index.get_indexer(train_ids)
    keep = tr >= 0
    if keep.sum() < 20 or len(set(train_labels[keep])) < 2:
        return out
    train_items = feat.iloc[tr[keep]].reset_index()
    result = train(
        train_items,
        pd.Series(train_labels[keep], index=train_items.index),
        classes,
        params={
            "n_estimators": params.quality_rounds,
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_child_samples": 20,
            "num_threads": 1,
        },
        features=item_features,
        valid_fraction=0.0,
        seed=params.seed,
    )
    pr = feat.index.get_indexer(predict_ids)
    has = pr >= 0
    if has.any():
        out[has] = result.model.predict_proba(feat.iloc[pr[has]].reset_index()).to_numpy()
    return out


def annotation_context(
    annotations: pd.DataFrame,
    classes: tuple[str, ...] | list[str],
    items: pd.DataFrame | None = None,
    params: FeatureParams | None = None,
    item_features: FeaturesParams | None = None,
) -> pd.DataFrame:
    """The context of every annotation: everything its features may see, never its own label.

    Args:
        annotations: ``item_id, annotator_id, label`` (+ optional behaviour columns), one row per
            (item, annotator).
        classes: the label set in order.
        items: ``item_id`` + feature columns for the cross-fitted quality model, or None.
        params: estimation settings.
        item_features: params ``features`` (item column roles, TF-IDF settings) of the quality model;
            None: roles inferred.

    Returns:
        One row per annotation (same index): ``fold``, the label-free scalars of :data:`SCALAR_FEATURES`,
        the behaviour categoricals, and per-class vectors ``<name>__<class>`` for :data:`PER_CLASS`.

    Raises:
        SchemaError: a required column is missing, a label is outside ``classes``, or an (item,
            annotator) pair repeats.
    """
    params = params or FeatureParams()
    classes = tuple(str(c) for c in classes)
    _check(annotations, classes)
    k = len(classes)
    n = len(annotations)
    item_codes, item_index = pd.factorize(annotations[schema.ITEM_ID].astype(str), sort=True)
    ann_codes, ann_index = pd.factorize(annotations[schema.ANNOTATOR_ID].astype(str), sort=True)
    lab = pd.Categorical(annotations[schema.LABEL].astype(str), categories=list(classes)).codes.astype(
        np.int64
    )
    n_items, n_ann = len(item_index), len(ann_index)
    item_fold = item_folds(np.asarray(item_index, dtype=object), params.n_folds)
    row_fold = item_fold[item_codes]
    use_model = params.quality_model and items is not None and items.shape[1] > 1

    # per-annotation outputs filled fold by fold
    recall = np.full((n, k), np.nan)
    precision = np.full((n, k), np.nan)
    rate = np.full((n, k), np.nan)
    conf_rows = np.zeros((n, k, k))  # the annotator's out-of-fold confusion (true x given)
    skill = np.full(n, np.nan)
    ann_n = np.zeros(n)
    ann_ent = np.full(n, np.nan)
    prior_item = np.full((n_items, k), np.nan)
    model_item = np.full((n_items, k), np.nan)

    frame = pd.DataFrame(
        {
            schema.ITEM_ID: annotations[schema.ITEM_ID].astype(str).to_numpy(),
            schema.ANNOTATOR_ID: annotations[schema.ANNOTATOR_ID].astype(str).to_numpy(),
            schema.LABEL: annotations[schema.LABEL].astype(str).to_numpy(),
        }
    )
    for f in range(params.n_folds):
        test_rows = row_fold == f
        if not test_rows.any():
            continue
        train_rows = ~test_rows
        test_items = np.flatnonzero(item_fold == f)
        if not train_rows.any():
            # a single fold holds every item: nothing to learn from; uninformative context
            conf = np.full((n_ann, k, k), 1.0 / k)
            prior = np.full(k, 1.0 / k)
            counts_ann = np.zeros(n_ann)
            skills = np.full(n_ann, np.nan)
        else:
            agg = make_aggregator(params.aggregator or DEFAULT_METHOD, classes=classes).fit(frame[train_rows])
            tr_items = np.unique(item_codes[train_rows])
            # align the aggregator's posteriors with our item codes
            init = agg.probas_.reindex(np.asarray(item_index, dtype=object)[tr_items])[
                list(classes)
            ].to_numpy()
            local = np.full(n_items, -1)
            local[tr_items] = np.arange(len(tr_items))
            post, conf_raw, prior = dawid_skene_em(
                local[item_codes[train_rows]],
                ann_codes[train_rows],
                lab[train_rows],
                init,
                n_ann,
                params.em_iterations,
            )
            # pooled confusion and shrinkage: unseen annotators get the pooled matrix
            soft = np.zeros((n_ann, k, k))
            np.add.at(
                soft,
                (ann_codes[train_rows], slice(None), lab[train_rows]),
                post[local[item_codes[train_rows]]],
            )
            pooled = soft.sum(axis=0) + EPS
            pooled /= pooled.sum(axis=1, keepdims=True)
            conf = soft + params.smoothing * pooled[None]
            conf /= conf.sum(axis=2, keepdims=True)
            counts_ann = np.bincount(ann_codes[train_rows], minlength=n_ann).astype(np.float64)
            skills = np.einsum("c,acc->a", prior, conf)
            skills[counts_ann == 0] = np.nan
            if use_model:
                tr_ids = np.asarray(item_index, dtype=object)[tr_items]
                tr_lab = np.asarray(classes, dtype=object)[post.argmax(axis=1)]
                te_ids = np.asarray(item_index, dtype=object)[test_items]
                model_item[test_items] = _quality_fold(
                    items, tr_ids, tr_lab, te_ids, classes, params, item_features
                )
        # annotator statistics for the test rows (learned on the other folds only)
        a = ann_codes[test_rows]
        conf_rows[test_rows] = conf[a]
        recall[test_rows] = np.diagonal(conf, axis1=1, axis2=2)[a]
        says = np.einsum("c,acl->al", prior, conf)  # P(says l) under the prior
        rate[test_rows] = says[a]
        precision[test_rows] = (prior[None, :] * np.diagonal(conf, axis1=1, axis2=2))[a] / says[a]
        skill[test_rows] = skills[a]
        ann_n[test_rows] = counts_ann[a]
        ann_ent[test_rows] = _entropy(says)[a]
        prior_item[test_items] = prior

    # item prior: the fold's class prior, mixed with the cross-fitted quality model where it exists
    has_model = ~np.isnan(model_item).any(axis=1)
    prior_item[has_model] = 0.5 * prior_item[has_model] + 0.5 * model_item[has_model]

    # leave-one-out over the item: every quantity sums over all rows of the item, minus the row itself
    onehot = np.eye(k)[lab]
    item_counts = np.zeros((n_items, k))
    np.add.at(item_counts, item_codes, onehot)
    others_counts = item_counts[item_codes] - onehot
    n_others = others_counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        others_share = others_counts / n_others[:, None]
    # own log-likelihood of each true class given the own label; summed over the *other* rows only
    own_ll = np.log(conf_rows[np.arange(n), :, lab] + EPS)
    others_ll = np.log(prior_item[item_codes] + EPS) + loo_sum(own_ll, item_codes)
    others_ll -= others_ll.max(axis=1, keepdims=True)
    others_post = np.exp(others_ll)
    others_post /= others_post.sum(axis=1, keepdims=True)
    # posterior that the true class is l if this annotation gave l: others_post[l] * conf[l, l] / norm_l
    joint = others_post[:, :, None] * conf_rows  # true x given
    full_post = np.diagonal(joint, axis1=1, axis2=2) / (joint.sum(axis=1) + EPS)

    out = pd.DataFrame(index=annotations.index)
    out["fold"] = row_fold
    out["ann_n_oof"] = ann_n
    out["ann_skill"] = skill
    out["ann_label_entropy"] = ann_ent
    out["n_annotations"] = item_counts.sum(axis=1)[item_codes]
    out["n_others"] = n_others
    out["others_entropy"] = np.where(n_others > 0, _entropy(np.nan_to_num(others_share)), np.nan)
    out["others_post_max"] = others_post.max(axis=1)
    model_rows = model_item[item_codes]
    out["model_proba_max"] = np.nanmax(np.where(np.isnan(model_rows), -np.inf, model_rows), axis=1)
    out.loc[np.isnan(model_rows).any(axis=1), "model_proba_max"] = np.nan
    beh = _behaviour(annotations)
    for col in beh.columns:
        out[col] = beh[col].to_numpy()
    for name, values in (
        ("others_share", others_share),
        ("others_post", others_post),
        ("full_post", full_post),
        ("model_proba", model_rows),
        ("ann_recall", recall),
        ("ann_precision", precision),
        ("ann_rate", rate),
    ):
        for j, cls in enumerate(classes):
            out[f"{name}__{cls}"] = values[:, j]
    return out


def features_from_context(
    context: pd.DataFrame, given: pd.Series | np.ndarray, classes: tuple[str, ...] | list[str]
) -> pd.DataFrame:
    """Model features: the label-free context plus the per-class vectors read at the given label.

    Args:
        context: output of :func:`annotation_context`.
        given: the given label per row (same order as ``context``).
        classes: the label set.

    Returns:
        The feature frame (no ids): :data:`SCALAR_FEATURES`, ``<name>_given`` for each of
        :data:`PER_CLASS`, :data:`GIVEN_FLAGS`, and the categoricals of :data:`CATEGORICAL_FEATURES`.
    """
    classes = tuple(str(c) for c in classes)
    code = pd.Categorical(np.asarray(given, dtype=object), categories=list(classes)).codes.astype(np.int64)
    rows = np.arange(len(context))
    out = context[list(SCALAR_FEATURES)].copy()
    for name in PER_CLASS:
        mat = context[[f"{name}__{c}" for c in classes]].to_numpy(dtype=np.float64)
        out[f"{name}_given"] = mat[rows, code]
        if name == "others_post":
            out["others_top_is_given"] = (mat.argmax(axis=1) == code).astype(np.float64)
        if name == "model_proba":
            top = np.where(np.isnan(mat).any(axis=1), np.nan, (np.nan_to_num(mat).argmax(axis=1) == code))
            out["model_top_is_given"] = top.astype(np.float64)
    out["given_label"] = pd.Categorical(np.asarray(given, dtype=object), categories=list(classes))
    for col in (schema.BATCH_ID, schema.GUIDELINE_VERSION):
        out[col] = np.asarray(context[col], dtype=object)
    return out


def annotation_features(
    annotations: pd.DataFrame, classes: tuple[str, ...] | list[str], *args, **kwargs
) -> pd.DataFrame:
    """Features of every annotation (same index as ``annotations``); see the module docstring.

    The arguments are :func:`annotation_context`'s (``items``, ``params``, ``item_features``).
    """
    context = annotation_context(annotations, classes, *args, **kwargs)
    return features_from_context(context, annotations[schema.LABEL].astype(str), classes)


def feature_names(classes: tuple[str, ...] | list[str]) -> list[str]:
    """The model's feature columns, in order (independent of the class names)."""
    return [*SCALAR_FEATURES, *(f"{n}_given" for n in PER_CLASS), *GIVEN_FLAGS, *CATEGORICAL_FEATURES]
