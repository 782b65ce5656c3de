"""Loaders for the real crowdsourcing data sets in ``../shared/datasets`` (read in place, never copied).

Each loader returns a :class:`Dataset`: the annotations as labelcycle's long table
(``item_id, annotator_id, label``, all strings, raw rows, duplicates kept) and the gold labels
(``item_id, label``) for the items that have gold *and* annotations.

Pitfalls handled here (see each SOURCE.md):

* GAL TSV (adult_content2, hitspam_crowdflower): no header, ``worker, item, label``; duplicate
  (item, worker) rows kept (the aggregators must cope; the pipeline dedups before aggregating);
  gold only for a subset, and some gold items have no annotations (dropped).
* Zheng CSV (dog, possent, product): ``question,worker,answer`` + ``question,truth``; CRLF line ends;
  product ids end in ``_<gold>`` (leak), so the suffix is cut.
* Snow TSV (rte, temp): one row per judgement with the gold repeated on every row; gold is split
  off into its own table and never left in the annotations.
* music: the gold genre is repeated on every row and the song file name contains the genre, so
  items get opaque ids.

The root is ``$LABELCYCLE_SHARED_DATASETS`` or ``<repo>/../shared/datasets``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "LABELCYCLE_SHARED_DATASETS"


@dataclass(frozen=True)
class Dataset:
    name: str
    annotations: pd.DataFrame  # item_id, annotator_id, label (str)
    gold: pd.DataFrame  # item_id, label (str), only items that have annotations
    informative_gold: bool = True  # False where gold conflicts with the crowd (hitspam)


def datasets_root() -> Path:
    """Where the shared data sets live (env override, else ``<repo>/../shared/datasets``)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


def _table(item: pd.Series, annotator: pd.Series, label: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": item.astype(str).to_numpy(),
            "annotator_id": annotator.astype(str).to_numpy(),
            "label": label.astype(str).to_numpy(),
        }
    )


def _gold(item: pd.Series, label: pd.Series, annotations: pd.DataFrame) -> pd.DataFrame:
    gold = pd.DataFrame({"item_id": item.astype(str).to_numpy(), "label": label.astype(str).to_numpy()})
    gold = gold.drop_duplicates("item_id")
    return gold[gold["item_id"].isin(set(annotations["item_id"]))].reset_index(drop=True)


def load_gal(folder: Path, name: str, informative_gold: bool = True) -> Dataset:
    """GAL format: ``labels.txt`` (worker, item, label) and ``gold.txt`` (item, gold), TSV, no header."""
    raw = pd.read_csv(folder / "labels.txt", sep="\t", header=None, names=["w", "i", "l"], dtype=str)
    gold = pd.read_csv(folder / "gold.txt", sep="\t", header=None, names=["i", "g"], dtype=str)
    ann = _table(raw["i"].str.strip(), raw["w"].str.strip(), raw["l"].str.strip())
    return Dataset(name, ann, _gold(gold["i"].str.strip(), gold["g"].str.strip(), ann), informative_gold)


def load_zheng(folder: Path, name: str, strip_id_suffix: bool = False) -> Dataset:
    """Zheng format: ``answer.csv`` (question, worker, answer) and ``truth.csv`` (question, truth)."""
    raw = pd.read_csv(folder / "answer.csv", dtype=str)
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    raw.columns = ["i", "w", "l"]
    truth.columns = ["i", "g"]
    for frame in (raw, truth):
        for col in frame.columns:
            frame[col] = frame[col].str.strip()
    if strip_id_suffix:  # product ids are <recordA>_<recordB>_<gold>: cut the leaking suffix
        raw["i"] = raw["i"].str.rsplit("_", n=1).str[0]
        truth["i"] = truth["i"].str.rsplit("_", n=1).str[0]
    ann = _table(raw["i"], raw["w"], raw["l"])
    return Dataset(name, ann, _gold(truth["i"], truth["g"], ann))


def load_snow(path: Path, name: str) -> Dataset:
    """Snow format: one TSV row per judgement with ``gold`` repeated on every row."""
    raw = pd.read_csv(path, sep="\t", dtype=str)
    ann = _table(raw["orig_id"], raw["!amt_worker_ids"], raw["response"])
    return Dataset(name, ann, _gold(raw["orig_id"], raw["gold"], ann))


def load_music(path: Path, name: str) -> Dataset:
    """Rodrigues' music CSV; song names leak the genre, so items get opaque ids."""
    raw = pd.read_csv(path, dtype=str)
    codes, _ = pd.factorize(raw["Input.song"])
    item = pd.Series([f"song{c:04d}" for c in codes])
    ann = _table(item, raw["WorkerID"], raw["Answer.pred_label"])
    return Dataset(name, ann, _gold(item, raw["Input.true_label"], ann))


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "adult_content2": lambda r: load_gal(r / "adult_content2", "adult_content2"),
    "dog_zheng2017": lambda r: load_zheng(r / "dog_zheng2017", "dog_zheng2017"),
    "music_genre_rodrigues2013": lambda r: load_music(
        r / "music_genre_rodrigues2013" / "mturk_answers.csv", "music_genre_rodrigues2013"
    ),
    "possent_zheng2017": lambda r: load_zheng(r / "possent_zheng2017", "possent_zheng2017"),
    "product_zheng2017": lambda r: load_zheng(
        r / "product_zheng2017", "product_zheng2017", strip_id_suffix=True
    ),
    "rte_snow2008": lambda r: load_snow(r / "rte_snow2008" / "rte.standardized.tsv", "rte_snow2008"),
    "temp_snow2008": lambda r: load_snow(r / "temp_snow2008" / "temp.standardized.tsv", "temp_snow2008"),
    "hitspam_crowdflower": lambda r: load_gal(
        r / "hitspam_crowdflower", "hitspam_crowdflower", informative_gold=False
    ),
}


def load_all(root: Path | None = None) -> list[Dataset]:
    """Every real data set, in a fixed order."""
    root = root or datasets_root()
    return [loader(root) for loader in LOADERS.values()]
