"""The one item-feature pipeline of both LightGBM models (the quality model and the error model's
cross-fitted quality probability): item columns in, a LightGBM input out.

``FeaturePipeline(features).fit(train_items, train_labels)`` settles the column roles
(:mod:`labelcycle.features.roles`), the categories of every categorical column, the length of every
embedding and the n-grams of the text columns (:mod:`labelcycle.features.text`: TF-IDF weights of the
n-grams most associated with the training labels), all from the training items only. ``transform``
then gives:

* without text or embedding columns, the frame the quality model has always taken: numeric columns as
  float, categoricals as pandas categoricals with the training categories (so a model on such items is
  exactly what it was before text features existed);
* otherwise a scipy CSR matrix: numeric columns, categorical codes (NaN when missing or unseen, declared
  to LightGBM through :attr:`FeaturePipeline.categorical_indices`), embedding dimensions, each text
  column's linear text score (:mod:`labelcycle.features.text_score`; out of fold for the training items,
  see :meth:`FeaturePipeline.fit_transform`), then the selected word and character n-grams. With text
  scores, :meth:`FeaturePipeline.init_score` gives the linear base LightGBM boosts from (the stack of the
  columns' scores, :class:`~labelcycle.features.text_score.TextStack`), read from those same columns.

The fitted pipeline is plain data (:meth:`to_dict`), saved beside the booster, so a saved model scores
raw items.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from labelcycle.errors import NotFittedError, SchemaError
from labelcycle.features.roles import Roles, infer_roles, is_vector
from labelcycle.features.text import TextVectorizer, fit_text, text_values
from labelcycle.features.text_score import TextScore, TextStack, fit_text_score, fit_text_stack
from labelcycle.params import FeaturesParams, TfidfParams

#: prefix of the tuned settings that belong to ``features.tfidf`` (the rest are LightGBM's)
TUNED_PREFIX = "tfidf_"


def split_tuned(params: dict, features: FeaturesParams | None) -> tuple[dict, FeaturesParams]:
    """LightGBM params and the feature settings: tuned ``tfidf_<field>`` keys override ``features.tfidf``."""
    features = features or FeaturesParams()
    text = {k[len(TUNED_PREFIX) :]: v for k, v in params.items() if k.startswith(TUNED_PREFIX)}
    lgb_params = {k: v for k, v in params.items() if not k.startswith(TUNED_PREFIX)}
    if text:
        features = replace(features, tfidf=replace(features.tfidf, **text))
    return lgb_params, features


def _numeric(items: pd.DataFrame, col: str) -> np.ndarray:
    """A numeric feature column as float; a value that is text is refused, not turned into a gap."""
    values = items[col]
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        example = values[bad].iloc[0]
        raise SchemaError(
            f"items column {col!r} was numeric in the training items but holds text here (e.g. "
            f"{str(example)[:40]!r}, {int(bad.sum())} value(s)); fix these items, or declare the column's "
            "role "
            "in params.yaml (features.text or features.categorical) and retrain"
        )
    return num.astype("float64").to_numpy()


class FeaturePipeline:
    """Item columns -> LightGBM input; see the module docstring.

    Args:
        features: params ``features`` (roles and TF-IDF settings); None: every role inferred, default TF-IDF.

    Attributes (after :meth:`fit`):
        roles_: the role of every column.
        categories_: training categories per categorical column.
        embedding_dims_: length per embedding.
        text_: the fitted vectorisers, two per text column.
    """

    def __init__(self, features: FeaturesParams | None = None) -> None:
        self.features = features or FeaturesParams()

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, items: pd.DataFrame, y: np.ndarray | None = None) -> FeaturePipeline:
        """Learn roles, categories, embedding lengths and the text features from training items.

        Args:
            items: the training items.
            y: their labels (integer codes 0..k-1): the text n-grams are selected by them and the linear
                text scores fitted on them; None: the most frequent n-grams, no text scores.

        Raises:
            ConfigError: params name a column the items lack, or give a column two roles.
            SchemaError, ValidationError: an embedding or text column cannot be used (see the message).
        """
        self.fit_transform(items, y)
        return self

    def fit_transform(
        self, items: pd.DataFrame, y: np.ndarray | None = None
    ) -> pd.DataFrame | sparse.csr_matrix:
        """:meth:`fit`, and the features of the same items, their text scores out of fold (so a model
        trained on them sees scores like those of new items)."""
        self.fit_columns(items)
        tfidf: TfidfParams = self.features.tfidf
        texts = {col: text_values(items, col, tfidf.max_chars) for col in self.roles_.text}
        self.text_ = fit_text(texts, y, tfidf) if texts else []
        self.scores_ = []
        oof = []
        if texts and y is not None and len(np.unique(y)) > 1:
            n_classes = int(np.max(y)) + 1
            for col, values in texts.items():
                score, col_oof = fit_text_score(col, values, np.asarray(y), n_classes, tfidf)
                self.scores_.append(score)
                oof.append(col_oof)
            self.stack_ = fit_text_stack(np.hstack(oof), np.asarray(y), n_classes)
        if not self.is_matrix:
            return self._frame(items)
        blocks = [self.dense(items), *(sparse.csr_matrix(o) for o in oof)]
        blocks += [vec.transform(texts[vec.column]) for vec in self.text_]
        return sparse.hstack(blocks, format="csr", dtype=np.float64)

    def fit_columns(self, items: pd.DataFrame) -> FeaturePipeline:
        """Everything but the text n-grams: roles, categories, embedding lengths (see :meth:`dense`)."""
        roles = infer_roles(items, self.features)
        self.roles_ = roles
        self.categories_ = {
            col: tuple(sorted({str(v) for v in items[col].dropna().unique()})) for col in roles.categorical
        }
        self.embedding_dims_ = {}
        for emb in roles.embedding:
            self.embedding_dims_[emb.name] = (
                self._list_dim(items, emb.name) if emb.is_list else len(emb.columns)
            )
        self.text_: list[TextVectorizer] = []
        self.scores_: list[TextScore] = []
        self.stack_: TextStack | None = None
        return self

    @staticmethod
    def _list_dim(items: pd.DataFrame, col: str) -> int:
        lengths = {len(v) for v in items[col].dropna() if is_vector(v)}
        if len(lengths) != 1:
            raise SchemaError(
                f"embedding column {col!r} holds vectors of lengths {sorted(lengths)[:5]}; every item's "
                "embedding must have the same length (missing: leave the cell empty)"
            )
        return lengths.pop()

    def _check_fitted(self) -> None:
        if not hasattr(self, "roles_"):
            raise NotFittedError("the feature pipeline is not fitted; call fit on the training items first")

    # -- the output ------------------------------------------------------------------------------------
    @property
    def input_columns(self) -> list[str]:
        """The item columns the pipeline reads."""
        self._check_fitted()
        return self.roles_.columns

    @property
    def is_matrix(self) -> bool:
        """True: :meth:`transform` gives a CSR matrix (text or embeddings); False: a plain frame."""
        self._check_fitted()
        return self.roles_.has_matrix_features

    @property
    def feature_names(self) -> list[str]:
        """One readable name per output column (n-grams as ``<column>:word|char:<n-gram>``)."""
        self._check_fitted()
        emb = [f"{e.name}[{i}]" for e in self.roles_.embedding for i in range(self.embedding_dims_[e.name])]
        scores = [name for score in self.scores_ for name in score.feature_names]
        text = [name for vec in self.text_ for name in vec.feature_names]
        return [*self.roles_.numeric, *self.roles_.categorical, *emb, *scores, *text]

    @property
    def lightgbm_feature_names(self) -> list[str] | str:
        """Names LightGBM accepts (``auto`` for a frame: its column names)."""
        if not self.is_matrix:
            return "auto"
        return [f"f{i}_{re.sub(r'[^0-9A-Za-z_]', '_', n)[:40]}" for i, n in enumerate(self.feature_names)]

    @property
    def categorical_indices(self) -> list[int] | str:
        """Output columns LightGBM must treat as categories (``auto`` for a frame: its categoricals)."""
        if not self.is_matrix:
            return "auto"
        start = len(self.roles_.numeric)
        return list(range(start, start + len(self.roles_.categorical)))

    @property
    def score_columns(self) -> slice:
        """The output columns holding the text columns' scores (after numeric, categorical, embedding)."""
        self._check_fitted()
        start = len(self.roles_.numeric) + len(self.roles_.categorical) + sum(self.embedding_dims_.values())
        return slice(start, start + sum(len(score.intercept) for score in self.scores_))

    def init_score(self, X: pd.DataFrame | sparse.csr_matrix) -> np.ndarray | None:
        """The linear base LightGBM boosts from, for rows of :meth:`transform` (or :meth:`fit_transform`)
        output: items x classes log-probabilities (binary: the log-odds of class 1); None without text
        scores."""
        if getattr(self, "stack_", None) is None or not self.is_matrix:
            return None
        scores = X[:, self.score_columns]
        return self.stack_.init_score(scores.toarray() if sparse.issparse(scores) else np.asarray(scores))

    def transform(self, items: pd.DataFrame) -> pd.DataFrame | sparse.csr_matrix:
        """The LightGBM input for ``items`` (rows in the same order).

        Raises:
            SchemaError: a column the pipeline was fitted with is missing, a numeric column holds text, an
                embedding has the wrong length.
            ValidationError: a text value is not valid UTF-8 or is too long.
        """
        self._check_fitted()
        missing = [c for c in self.input_columns if c not in items.columns]
        if missing:
            raise SchemaError(f"items lack the feature column(s) {missing} the model was trained with")
        if not self.is_matrix:
            return self._frame(items)
        cap = self.features.tfidf.max_chars
        texts = {col: text_values(items, col, cap) for col in self.roles_.text}
        blocks = [self.dense(items)]
        blocks += [sparse.csr_matrix(score.scores(texts[score.column])) for score in self.scores_]
        blocks += [vec.transform(texts[vec.column]) for vec in self.text_]
        return sparse.hstack(blocks, format="csr", dtype=np.float64)

    def dense(self, items: pd.DataFrame) -> sparse.csr_matrix:
        """The columns before the text n-grams, as CSR: numeric, categorical codes, embedding dimensions."""
        self._check_fitted()
        cols = [_numeric(items, c) for c in self.roles_.numeric]
        for col in self.roles_.categorical:
            codes = self._codes(items, col).astype("float64")
            codes[codes < 0] = np.nan
            cols.append(codes)
        for emb in self.roles_.embedding:
            cols.extend(self._embedding(items, emb.name, emb.columns, emb.is_list).T)
        if not cols:
            return sparse.csr_matrix((len(items), 0), dtype=np.float64)
        return sparse.csr_matrix(np.column_stack(cols))

    def _codes(self, items: pd.DataFrame, col: str) -> np.ndarray:
        """Category code per row: -1 where the value is missing or was never seen in training."""
        values = items[col]
        strings = (
            values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))
        )
        codes = pd.Index(self.categories_[col]).get_indexer(strings)
        codes[values.isna().to_numpy()] = -1
        return codes.astype(np.int64)

    def _frame(self, items: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for col in self.roles_.numeric:
            out[col] = _numeric(items, col)
        for col in self.roles_.categorical:
            out[col] = pd.Categorical.from_codes(
                self._codes(items, col), categories=list(self.categories_[col])
            )
        return pd.DataFrame(out, index=items.index)

    def _embedding(
        self, items: pd.DataFrame, name: str, columns: tuple[str, ...], is_list: bool
    ) -> np.ndarray:
        dim = self.embedding_dims_[name]
        if not is_list:
            return np.column_stack([_numeric(items, c) for c in columns])
        out = np.full((len(items), dim), np.nan)
        for row, value in enumerate(items[name].tolist()):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if not is_vector(value) or len(value) != dim:
                raise SchemaError(
                    f"embedding column {name!r}, row {row}: expected a list of {dim} numbers (as in "
                    "training), "
                    f"got {str(value)[:60]!r}; give every item an embedding of the same model"
                )
            out[row] = np.asarray(value, dtype=np.float64)
        return out

    # -- persistence -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "features": asdict(self.features),
            "roles": self.roles_.to_dict(),
            "categories": {c: list(v) for c, v in self.categories_.items()},
            "embedding_dims": dict(self.embedding_dims_),
            "text": [vec.to_dict() for vec in self.text_],
            "scores": [score.to_dict() for score in self.scores_],
            "stack": None if self.stack_ is None else self.stack_.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeaturePipeline:
        from labelcycle.params import build

        pipe = cls(build(FeaturesParams, d.get("features") or {}, "features"))
        pipe.roles_ = Roles.from_dict(d["roles"])
        pipe.categories_ = {c: tuple(v) for c, v in d.get("categories", {}).items()}
        pipe.embedding_dims_ = {k: int(v) for k, v in d.get("embedding_dims", {}).items()}
        pipe.text_ = [TextVectorizer.from_dict(v) for v in d.get("text", [])]
        pipe.scores_ = [TextScore.from_dict(v) for v in d.get("scores", [])]
        pipe.stack_ = TextStack.from_dict(d["stack"]) if d.get("stack") else None
        return pipe

    @classmethod
    def from_columns(
        cls, numeric: list[str] | tuple[str, ...], categorical: dict[str, tuple[str, ...]]
    ) -> FeaturePipeline:
        """A fitted pipeline of numeric and categorical columns only (models saved before text features)."""
        pipe = cls()
        pipe.roles_ = Roles(categorical=tuple(categorical), numeric=tuple(numeric))
        pipe.categories_ = {c: tuple(v) for c, v in categorical.items()}
        pipe.embedding_dims_ = {}
        pipe.text_ = []
        pipe.scores_ = []
        pipe.stack_ = None
        return pipe
