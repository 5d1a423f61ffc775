"""Read a data source into a DataFrame, one small reader per kind of source."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.data.http import read_http, safe_url
from mloop.data.objects import OBJECT_SCHEMES, read_object
from mloop.data.progress import CountingReader, Progress
from mloop.data.sql import is_sql, read_sql, safe_name_of
from mloop.errors import SourceError

Reader = Callable[[Path], pd.DataFrame]


def _read_text_table(path: Path, progress: Progress, sep: str = ",") -> pd.DataFrame:
    """CSV/TSV through a byte counter (the compressed bytes for .gz), so the caller can draw progress."""
    with path.open("rb") as raw:
        stream = io.BufferedReader(CountingReader(raw, path.stat().st_size, progress))
        return pd.read_csv(stream, sep=sep, compression="gzip" if path.name.lower().endswith(".gz") else None)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True)


_READERS: dict[str, Reader] = {
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
}


def _reader_for(path: Path) -> Reader:
    name = path.name.lower()
    for suffix in sorted(_READERS, key=len, reverse=True):
        if name.endswith(suffix):
            return _READERS[suffix]
    known = ", ".join(sorted(_READERS))
    raise SourceError(f"{path}: unsupported file type; mloop reads {known}.")


def _read_file(source: str, progress: Progress | None = None) -> tuple[pd.DataFrame, str]:
    path = Path(source.removeprefix("file://"))
    if not path.exists():
        raise SourceError(f"{path}: no such file. Check data.source in mloop.yaml.")
    if not path.is_file():
        raise SourceError(f"{path}: is a directory, not a data file.")
    reader = _reader_for(path)
    name = path.name.lower()
    if progress is not None and name.endswith((".csv", ".csv.gz", ".tsv")):
        sep = "\t" if name.endswith(".tsv") else ","
        reader = lambda p: _read_text_table(p, progress, sep)  # noqa: E731 - same signature as the table
    try:
        return reader(path), str(path)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not readable as UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: not a readable table ({first}).") from None


def read_source(
    source: str,
    query: str | None = None,
    after: tuple[str, Any] | None = None,
    endpoint_url: str | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Read a table from a local file, a database (with ``query``), an http(s) URL or an object store.

    ``after=(column, value)`` keeps only rows whose ``column`` is past ``value`` (incremental ingest); a
    database applies it in the query, so old rows never leave the server. Every failure names the source.
    """
    scheme = source.split("://", 1)[0].lower() if "://" in source else "file"
    if is_sql(source):
        frame, where = read_sql(source, query, after), safe_name_of(source)
    elif scheme in ("http", "https"):
        frame, where = read_http(source), safe_url(source)
    elif scheme in OBJECT_SCHEMES:
        frame, where = read_object(source, endpoint_url), source
    elif scheme == "file":
        frame, where = _read_file(source, progress)
    else:
        raise SourceError(
            f"{source}: the {scheme}:// scheme is not supported; use a file path, sqlite:///, postgresql://, "
            "http(s):// or s3://."
        )
    if after is not None:
        return _newer_rows(frame, after, where)
    if frame.shape[1] < 2 or frame.empty:
        raise SourceError(
            f"{where}: not a usable table: {len(frame)} rows and {frame.shape[1]} columns "
            "(need at least one row and two columns)."
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def describe_source(source: str, query: str | None = None) -> str:
    """How a snapshot records its source: without credentials or tokens, with the query that shaped it."""
    if is_sql(source):
        return f"{safe_name_of(source)} query: {' '.join((query or '').split())}"
    if source.split("://", 1)[0].lower() in ("http", "https"):
        return safe_url(source)
    return source


def _newer_rows(frame: pd.DataFrame, after: tuple[str, Any], where: str) -> pd.DataFrame:
    column, value = after
    frame.columns = [str(c).strip() for c in frame.columns]
    if column not in frame.columns:
        raise SourceError(f"{where}: incremental column {column!r} is not in the data.")
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        mask = values > pd.Timestamp(value)
    elif pd.api.types.is_numeric_dtype(values):
        mask = values > value
    else:
        mask = values.astype(str) > str(value)
    return frame.loc[mask.fillna(False).astype(bool)].reset_index(drop=True)
