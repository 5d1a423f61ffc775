"""Columns of a reference or a window, handed out one at a time, whatever holds them.

Drift is computed column by column, so the data never has to be in memory all at once. A DataFrame
hands out its own columns. A pyarrow ``Table``, ``Dataset`` or ``ParquetFile``, or the path of a Parquet file or
folder (mloop's snapshots are Parquet) is read one column at a time, converted to a pandas Series
exactly as ``Table.to_pandas`` converts it, and dropped by the caller once its statistics are taken:
the peak memory is then the libraries plus a couple of columns, not two whole frames.

A column's kind (numeric, categorical or unsupported) is decided by :func:`mloop.data.profile.infer_kind`
on the pandas dtype the column converts to, read off the schema without reading any value, so every
source of the same data gives the same kinds, values and therefore the same drift results.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pandas as pd

from mloop.data.profile import ColumnKind, infer_kind
from mloop.errors import MonitorError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

#: Bytes a Parquet file is read in (a buffered stream): a column chunk is then never held whole in its
#: encoded form beside the decoded column.
READ_BUFFER = 1 << 20

#: What :func:`column_source` accepts: a DataFrame, a pyarrow Table, Dataset or ParquetFile, a Parquet path.
TableLike: TypeAlias = "pd.DataFrame | pa.Table | ds.Dataset | pq.ParquetFile | str | os.PathLike[str]"


class ColumnSource(Protocol):
    """Named columns of equal length, read one at a time."""

    @property
    def names(self) -> list[str]: ...

    @property
    def num_rows(self) -> int: ...

    def kind(self, name: str) -> ColumnKind | None: ...

    def read(self, name: str) -> pd.Series: ...


@dataclass(frozen=True)
class FrameColumns:
    """The columns of a DataFrame already in memory (read without a copy)."""

    frame: pd.DataFrame

    @property
    def names(self) -> list[str]:
        return [str(name) for name in self.frame.columns]

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def kind(self, name: str) -> ColumnKind | None:
        return infer_kind(self.frame[name])

    def read(self, name: str) -> pd.Series:
        return self.frame[name]


class ArrowColumns:
    """The columns of a pyarrow Table, Dataset or Parquet file, each converted to pandas only when read."""

    def __init__(self, data: pa.Table | ds.Dataset | pq.ParquetFile, origin: str) -> None:
        self._data = data
        self._origin = origin
        schema = data.schema_arrow if _is_parquet_file(data) else data.schema
        hidden = _pandas_index_columns(schema)
        self._names = [name for name in schema.names if name not in hidden]
        # Zero rows converted: the pandas dtypes every column will have, without reading a value.
        self._dtypes = schema.empty_table().to_pandas().dtypes
        self._rows: int | None = None

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def num_rows(self) -> int:
        if self._rows is None:
            data = self._data
            if _is_parquet_file(data):
                self._rows = int(data.metadata.num_rows)
            else:
                self._rows = int(data.num_rows if _is_table(data) else data.count_rows())
        return self._rows

    def kind(self, name: str) -> ColumnKind | None:
        return infer_kind(pd.Series([], dtype=self._dtypes[name]))

    def read(self, name: str) -> pd.Series:
        data = self._data
        try:
            if _is_table(data):
                column = data.select([name])
            elif _is_parquet_file(data):
                column = data.read(columns=[name], use_threads=False)
            else:
                column = data.to_table(columns=[name])
        except OSError as exc:  # a file changed or broke after it was opened
            raise MonitorError(f"Could not read column {name!r} of {self._origin}: {exc}") from None
        # The column's own blocks, no consolidation copy; a column read here (not the caller's Table) has
        # its Arrow buffers freed as they are converted.
        frame = column.to_pandas(split_blocks=True, self_destruct=not _is_table(data))
        del column  # unusable after self_destruct
        series: pd.Series = frame[name]
        return series


def _is_parquet_file(data: Any) -> bool:
    import pyarrow.parquet as pq

    return isinstance(data, pq.ParquetFile)


def _is_table(data: Any) -> bool:
    import pyarrow as pa

    return isinstance(data, pa.Table)


def _pandas_index_columns(schema: pa.Schema) -> set[str]:
    """Columns pandas wrote for a DataFrame's index (``__index_level_0__``): not data to compare."""
    metadata = schema.metadata or {}
    raw = metadata.get(b"pandas")
    if raw is None:
        return set()
    try:
        index_columns = json.loads(raw).get("index_columns", [])
    except ValueError:
        return set()
    return {name for name in index_columns if isinstance(name, str)}


def column_source(data: TableLike, role: str) -> ColumnSource:
    """A :class:`ColumnSource` over ``data``; ``role`` ("reference", "current") names it in errors."""
    if isinstance(data, pd.DataFrame):
        return FrameColumns(data)
    if isinstance(data, (str, os.PathLike)):
        return ArrowColumns(_parquet_dataset(Path(data), role), f"the {role} data at {data}")
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if isinstance(data, (pa.Table, ds.Dataset, pq.ParquetFile)):
        return ArrowColumns(data, f"the {role} {type(data).__name__}")
    raise MonitorError(
        f"The {role} data is a {type(data).__name__}; pass a pandas DataFrame, a pyarrow Table or Dataset, "
        "or the path of a Parquet file or folder."
    )


def _parquet_dataset(path: Path, role: str) -> ds.Dataset | pq.ParquetFile:
    """A folder as a dataset; a single file through ``ParquetFile``, which reads one column with less
    buffering than a dataset scan (no read-ahead of other row groups)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if not path.exists():
        raise MonitorError(f"The {role} data {path} does not exist; pass the path of a Parquet file or folder.")
    try:
        if path.is_file():
            return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER)
        return ds.dataset(path, format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise MonitorError(f"The {role} data {path} is not readable as Parquet: {exc}") from None


__all__ = ["ArrowColumns", "ColumnSource", "FrameColumns", "TableLike", "column_source"]
