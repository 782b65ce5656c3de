"""Options shared by several commands (project folder, label set, column mapping), defined once, and where
a command that mirrors a stage takes its settings from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.compressed import (
    DEFAULT_MAX_INPUT_BYTES,
    MAX_INPUT_ENV,
    MAX_RATIO,
    RATIO_FLOOR,
    InputLimits,
    human_size,
    parse_size,
)
from labelcycle.errors import ConfigError, LabelcycleError
from labelcycle.params import Params, project_params
from labelcycle.readers import ColumnMap

F = TypeVar("F", bound=Callable)

REPO_HELP = "Project folder (default: the one holding the current folder)."


def repo_option(help: str = REPO_HELP) -> Callable[[F], F]:  # noqa: A002  (click's own keyword)
    """``--repo DIR``: the project folder."""
    return click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None, help=help)


def path_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A file (or, with ``dir=True``, folder) path option: ``path_option("-o", "--out", required=True, help=...)``."""
    folder = kwargs.pop("dir", False)
    return click.option(*decls, type=click.Path(path_type=Path, file_okay=not folder), **kwargs)


def count_option(*decls: str, low: int, default: int, help: str) -> Callable[[F], F]:  # noqa: A002
    """An integer option with a lower bound and a shown default (resamples, workers, ports...)."""
    return click.option(*decls, type=click.IntRange(min=low), default=default, show_default=True, help=help)


def column_options(f: F) -> F:
    """``--item-col``, ``--annotator-col``, ``--label-col``: the file's names for the contract's columns."""
    f = click.option("--label-col", default=None, help="The file's name for the label column.")(f)
    f = click.option("--annotator-col", default=None, help="The file's name for the annotator id column.")(f)
    return item_col_option(f)


def gold_column_options(f: F) -> F:
    """``--gold-item-col``, ``--gold-label-col``: the gold file's own names for ``item_id`` and ``label``
    (the annotations' ``--item-col``/``--label-col`` never apply to it)."""
    f = click.option(
        "--gold-label-col", default=None, help="The gold file's name for the label column (default: label)."
    )(f)
    return click.option(
        "--gold-item-col",
        default=None,
        help="The gold file's name for the item id column (default: item_id).",
    )(f)


def gold_colmap(item_col: str | None, label_col: str | None, na_values: str | None = None) -> ColumnMap:
    """The :class:`ColumnMap` of a gold file (``--gold-item-col``, ``--gold-label-col``)."""
    return colmap(item_col, None, label_col, None, na_values)


def item_col_option(f: F) -> F:
    """``--item-col`` alone (commands that read items only)."""
    return click.option("--item-col", default=None, help="The file's name for the item id column.")(f)


def na_values_option(f: F) -> F:
    """``--na-values NA,null``: the cell values a file uses for "no value" (default: only an empty cell)."""
    return click.option(
        "--na-values",
        default=None,
        metavar="WORDS",
        help="Comma-separated cell values that mean 'no value' in these files, e.g. 'NA,null' (matched "
        "exactly after trimming spaces). Default: only an empty cell is missing; NA, none, null are values.",
    )(f)


def max_input_size_option(f: F) -> F:
    """``--max-input-size SIZE``: how far a compressed input file may expand (:func:`input_limits`)."""
    return click.option(
        "--max-input-size",
        default=None,
        metavar="SIZE",
        help=f"Refuse a compressed file that decompresses to more than SIZE (e.g. 8GiB, 500MB). Default: "
        f"{human_size(DEFAULT_MAX_INPUT_BYTES)}, and at most {MAX_RATIO:g}x the compressed size past "
        f"{human_size(RATIO_FLOOR)} (a decompression bomb); an explicit SIZE replaces both. A Parquet file "
        f"is held to the SIZE of its data once read. The environment variable {MAX_INPUT_ENV} sets it too.",
    )(f)


def input_limits(max_input_size: str | None) -> InputLimits | None:
    """The limits of ``--max-input-size`` (None when not given: the environment's, else the defaults).

    Raises:
        ConfigError: the value is not a size.
    """
    if max_input_size is None:
        return None
    try:
        return InputLimits.explicit(parse_size(max_input_size))
    except ValueError:
        raise ConfigError(
            f"--max-input-size {max_input_size!r} is not a size; give bytes or a unit, e.g. 8GiB or 500MB"
        ) from None


def labels_option(f: F) -> F:
    """``--labels A,B,C``: the label set (see :meth:`StageDefaults.labels`)."""
    return click.option(
        "--labels",
        "label_set",
        default=None,
        help="Comma-separated label set (default: the project's ingest.labels, else the labels seen).",
    )(f)


def colmap(
    item_col: str | None,
    annotator_col: str | None,
    label_col: str | None,
    names: str | None = None,
    na_values: str | None = None,
) -> ColumnMap:
    """The :class:`ColumnMap` of the column options (``names``: ``--no-header``'s comma-separated list;
    ``na_values``: ``--na-values``' comma-separated list)."""
    return ColumnMap(
        item_col=item_col,
        annotator_col=annotator_col,
        label_col=label_col,
        names=tuple(n.strip() for n in names.split(",")) if names else None,
        na_values=tuple(v.strip() for v in na_values.split(",") if v.strip()) if na_values else (),
    )


def split_labels(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [c.strip() for c in text.split(",") if c.strip()]


def labels_seen(*frames: pd.DataFrame | None) -> list[str]:
    """The distinct non-empty labels of the frames, sorted."""
    seen: set[str] = set()
    for df in frames:
        if df is not None and schema.LABEL in df.columns:
            values = df[schema.LABEL].dropna().astype(str).str.strip()
            seen |= set(values[values != ""])
    return sorted(seen)


def find_project(repo: Path | None = None) -> Path | None:
    """The DVC project holding ``repo`` (default: the current folder), or None outside one."""
    from labelcycle.versioning.dvc import find_root

    try:
        return find_root(repo)
    except LabelcycleError:
        return None


def maybe_root(repo: Path | None = None) -> Path | None:
    """Like :func:`find_project`, but a ``--repo`` that is not a project is an error."""
    from labelcycle.versioning.dvc import find_root

    return find_root(repo) if repo is not None else find_project()


@dataclass(frozen=True)
class StageDefaults:
    """Settings of a command that mirrors a stage: the project's params inside a project, the defaults of
    :mod:`labelcycle.params` outside one.

    Attributes:
        root: the project, or None outside one.
        params: its params (defaults outside a project, or when it has no params.yaml).
    """

    root: Path | None
    params: Params = field(default_factory=Params)

    @property
    def in_project(self) -> bool:
        return self.root is not None and (self.root / catalog.PARAMS).exists()

    def labels(self, label_set: str | None) -> list[str] | None:
        """``--labels``, else the project's ``ingest.labels``; None outside a project, or while the project
        lists none yet (the labels seen)."""
        if label_set:
            return split_labels(label_set)
        return list(self.params.classes) if self.in_project and self.params.classes else None


def stage_defaults() -> StageDefaults:
    """The :class:`StageDefaults` of the current folder."""
    root = find_project()
    return StageDefaults(root, project_params(root))


def add_raw_batch(root: Path, files: list, counts: dict[str, int], command: str, origin: dict | None = None):
    """Write a new raw batch (and ``dvc add`` it) under the project lock; ``(batch, new)`` as
    :func:`labelcycle.versioning.raw.write_batch` (an identical batch already there is not new)."""
    from labelcycle.locking import project_lock
    from labelcycle.versioning import raw

    with project_lock(root, command):  # one batch write (and `dvc add`) at a time
        batch, new = raw.write_batch(root, files, counts, origin)
        if new:
            raw.track_batch(root, batch)
    return batch, new
