"""Immutable, content-addressed Parquet snapshots of ingested data."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import SourceError


@dataclass(frozen=True)
class Snapshot:
    """One version of the data: its content hash names it, so identical data is stored once."""

    hash: str
    rows: int
    columns: list[str]
    source: str
    created_at: str
    path: str
    parent: str | None = None  # the snapshot an incremental ingest appended to
    added_rows: int | None = None

    def read(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over the column names, dtypes and values, independent of the Parquet encoder."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_snapshot(frame: pd.DataFrame, source: str, folder: Path, parent: Snapshot | None = None) -> Snapshot:
    """Store ``frame`` as ``<hash>.parquet`` plus ``<hash>.json``; an existing snapshot is never rewritten."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.reset_index(drop=True)
    digest = content_hash(frame)
    data_path = folder / f"{digest}.parquet"
    meta_path = folder / f"{digest}.json"
    if meta_path.exists():
        _record(folder, digest)
        return load_snapshot(folder, digest)
    # Straight to a temporary file, not through an in-memory buffer: a large snapshot is not held twice.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{data_path.name}.")
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        os.replace(tmp, data_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    snapshot = Snapshot(
        hash=digest,
        rows=len(frame),
        columns=[str(c) for c in frame.columns],
        source=source,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        path=str(data_path),
        parent=parent.hash if parent else None,
        added_rows=len(frame) - parent.rows if parent else None,
    )
    # The metadata file is written last: its presence marks a complete snapshot.
    _atomic_write_bytes(meta_path, json.dumps(snapshot.to_dict(), indent=2).encode())
    _record(folder, digest)
    return snapshot


def mark_latest(folder: Path, digest: str) -> None:
    """Make an existing snapshot the latest again (after a checkout), so the next training uses it."""
    _record(folder, digest)


def _record(folder: Path, digest: str) -> None:
    """Append to the ingest log, whose order (not file times) decides which snapshot is the latest."""
    with (folder / "index.log").open("a", encoding="utf-8") as handle:
        handle.write(digest + "\n")


def load_snapshot(folder: Path, ref: str) -> Snapshot:
    """A snapshot by its full hash or a unique prefix of at least 6 characters."""
    # Only ``<hash>.json`` marks a snapshot; ``<hash>.validation.json`` and the like sit beside it.
    hexadecimal = len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref.lower())
    matches = sorted(p for p in folder.glob(f"{ref.lower()}*.json") if "." not in p.stem) if hexadecimal else []
    if len(matches) != 1:
        what = "no snapshot" if not matches else "several snapshots"
        raise SourceError(f"{what} matches {ref!r} in {folder}; `mloop data list` shows them.")
    meta = json.loads(matches[0].read_text())
    meta["path"] = str(folder / f"{meta['hash']}.parquet")
    known = set(Snapshot.__dataclass_fields__)
    return Snapshot(**{k: v for k, v in meta.items() if k in known})


def list_snapshots(folder: Path) -> list[Snapshot]:
    """All snapshots in the order they were last ingested, oldest first."""
    index = folder / "index.log"
    if not index.is_file():
        return []
    order = list(dict.fromkeys(reversed(index.read_text(encoding="utf-8").split())))
    return [load_snapshot(folder, digest) for digest in reversed(order)]


def latest_snapshot(folder: Path) -> Snapshot:
    snaps = list_snapshots(folder)
    if not snaps:
        raise SourceError(f"No snapshot in {folder} yet; run `mloop ingest` first.")
    return snaps[-1]
