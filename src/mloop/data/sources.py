"""Read a data source into a DataFrame, one small reader per kind of source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mloop.errors import SourceError

Reader = Callable[[Path], pd.DataFrame]


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


def read_source(source: str) -> pd.DataFrame:
    """Read a local CSV/Parquet/JSON-lines file; every failure names the file and the problem."""
    if "://" in source and not source.startswith("file://"):
        scheme = source.split("://", 1)[0]
        raise SourceError(f"{source}: the {scheme}:// scheme is not supported yet; use a local file path.")
    path = Path(source.removeprefix("file://"))
    if not path.exists():
        raise SourceError(f"{path}: no such file. Check data.source in mloop.yaml.")
    if not path.is_file():
        raise SourceError(f"{path}: is a directory, not a data file.")
    reader = _reader_for(path)
    try:
        frame = reader(path)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not readable as UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: not a readable table ({first}).") from None
    if frame.shape[1] < 2 or frame.empty:
        raise SourceError(
            f"{path}: not a usable table: {len(frame)} rows and {frame.shape[1]} columns "
            "(need at least one row and two columns)."
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
