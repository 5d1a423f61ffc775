"""Parse a downloaded table (bytes) by its name or content type: shared by the HTTP and object-store readers."""

from __future__ import annotations

import io
import json

import pandas as pd

_SUFFIXES = (
    (".csv.gz", "csv"),
    (".csv", "csv"),
    (".tsv", "tsv"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".json", "json"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
)
_CONTENT_TYPES = (
    ("csv", "csv"),
    ("tab-separated", "tsv"),
    ("ndjson", "jsonl"),
    ("json", "json"),
    ("parquet", "parquet"),
)


def kind_of(name: str, content_type: str = "") -> str:
    """csv, tsv, json, jsonl or parquet: from the file name first, then the content type; csv otherwise."""
    lowered = name.lower()
    for suffix, kind in _SUFFIXES:
        if lowered.endswith(suffix):
            return kind
    for marker, kind in _CONTENT_TYPES:
        if marker in content_type.lower():
            return kind
    return "csv"


def _records(body: bytes) -> pd.DataFrame:
    data = json.loads(body)
    if isinstance(data, dict):
        # {"data": [...]} and similar envelopes: the one list of records inside
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError("expected a JSON array of objects (one per row)")
    return pd.DataFrame.from_records(data)


def parse_table(body: bytes, name: str, kind: str) -> pd.DataFrame:
    """Raises UnicodeDecodeError, ValueError or pandas' ParserError for bytes that are not such a table."""
    if kind in ("csv", "tsv"):
        gzipped = name.lower().endswith(".gz")
        return pd.read_csv(
            io.BytesIO(body), sep="\t" if kind == "tsv" else ",", compression="gzip" if gzipped else None
        )
    if kind == "jsonl":
        return pd.read_json(io.StringIO(body.decode("utf-8")), lines=True)
    if kind == "parquet":
        return pd.read_parquet(io.BytesIO(body))
    return _records(body)
