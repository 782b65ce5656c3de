"""``labelcycle aggregate`` out of core: encode the Parquet data set into parts, fit by streaming, write by part."""

from __future__ import annotations

import tempfile
from pathlib import Path

from labelcycle.aggregation.base import BaseAggregator
from labelcycle.errors import ConfigError, InputFileError
from labelcycle.readers import ColumnMap


def aggregate_out_of_core(
    path: Path,
    model: BaseAggregator,
    out: Path,
    columns: ColumnMap,
    warm_start: Path | None,
    save_fit: Path | None,
) -> tuple[int, int]:
    """Aggregate the annotations at ``path`` (a Parquet file or directory) into ``out``; items and rows.

    Raises:
        ConfigError: the method has no streaming fit, or the input is not Parquet.
        InputFileError: the input is missing or unreadable.
        StateError: ``warm_start`` is not a saved fit.
    """
    from labelcycle.aggregation import fitted, streaming
    from labelcycle.aggregation.encode_parts import encode_dataset
    from labelcycle.curation import N_ANNOTATIONS, VOTE_SHARE
    from labelcycle.readers import parquet_files

    path = Path(path)
    if not streaming.streams(model):
        raise ConfigError(
            f"--warm-start/--save-fit need majority_vote, dawid_skene or hierarchical_dawid_skene, not "
            f"{model.name}; drop them or choose one of those with --method"
        )
    if not path.exists():
        raise InputFileError(f"{path}: no such file; check the path (it is resolved from {Path.cwd()})")
    if not path.is_dir() and path.suffix.lower() != ".parquet":
        raise ConfigError(
            f"{path}: --warm-start/--save-fit read Parquet (a file or a directory of files); "
            "convert the table to Parquet or drop those options"
        )
    files = parquet_files(path) if path.is_dir() else [path]
    init = fitted.load(warm_start) if warm_start else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".labelcycle-parts-", dir=out.parent) as tmp:
        try:
            encode_dataset(files, Path(tmp) / "codes", model.classes, columns.renames())
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read it as Parquet ({exc}); write it again") from None
        source = streaming.ParquetParts(Path(tmp) / "codes")
        if init is not None and tuple(init.classes) != tuple(source.layout.classes):
            raise ConfigError(
                f"{warm_start}: was fitted for the labels {list(init.classes)}, these annotations have "
                f"{list(source.layout.classes)}; pass the same --labels or drop --warm-start"
            )
        fit = streaming.fit(source, model, init)
        n_items = streaming.write_result(source, fit, out, drop=(N_ANNOTATIONS, VOTE_SHARE))
    if save_fit:
        fitted.save(fit, Path(save_fit))
    return n_items, source.layout.n_rows
