"""Write one table piece by piece (the out-of-core commands' output), in any format :func:`write_table` writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from labelcycle.readers import detect_format, write_table


class TableWriter:
    """Write one table piece by piece: CSV/TSV through Arrow's CSV writer, Parquet through a Parquet writer.

    Uncompressed CSV/TSV and Parquet stream (one piece in memory at a time); JSONL and compressed files
    collect the pieces and use :func:`write_table` at the end. The file appears only when every piece
    is written (written beside it, then renamed).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fmt, self.compression = detect_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._writer = None
        self._pieces: list[pd.DataFrame] = []

    def __enter__(self) -> TableWriter:
        return self

    def write(self, df: pd.DataFrame) -> None:
        streams = self.compression is None and self.fmt in ("csv", "tsv", "parquet")
        if not streams:
            self._pieces.append(df)
            return
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self._writer is None:
            if self.fmt == "parquet":
                self._writer = pq.ParquetWriter(self._tmp, table.schema)
            else:
                import pyarrow.csv as pacsv

                options = pacsv.WriteOptions(
                    delimiter="," if self.fmt == "csv" else "\t", quoting_style="needed"
                )
                self._writer = pacsv.CSVWriter(self._tmp, table.schema, write_options=options)
        self._writer.write_table(table)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        if self._writer is not None:
            self._tmp.replace(self.path)
        else:
            pieces = self._pieces or [pd.DataFrame()]
            write_table(pd.concat(pieces, ignore_index=True), self.path)
