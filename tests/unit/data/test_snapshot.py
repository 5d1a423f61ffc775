from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mloop.data.snapshot import content_hash, latest_snapshot, list_snapshots, load_snapshot, write_snapshot
from mloop.errors import SourceError


@pytest.fixture(scope="module")
def first(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[:400]


@pytest.fixture(scope="module")
def second(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[400:700]


def files(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


# ------------------------------------------------------------------------------ content hash


def test_hash_depends_on_content_not_on_the_index(first: pd.DataFrame) -> None:
    assert content_hash(first) == content_hash(first.copy())
    assert content_hash(first.set_axis(range(1000, 1000 + len(first)))) == content_hash(first)


def test_hash_changes_with_one_value_a_dtype_or_a_column_name(first: pd.DataFrame) -> None:
    base = content_hash(first)
    one_value = first.copy()
    one_value.loc[17, "Sale_Price"] += 1
    assert content_hash(one_value) != base
    assert content_hash(first.astype({"Sale_Price": "float64"})) != base
    assert content_hash(first.rename(columns={"Sale_Price": "price"})) != base
    assert content_hash(first.iloc[::-1].reset_index(drop=True)) != base  # row order is content


# ------------------------------------------------------------------------------------ writing


def test_snapshot_round_trips_the_data(tmp_path: Path, first: pd.DataFrame) -> None:
    snap = write_snapshot(first, "ames.csv", tmp_path)
    assert snap.rows == 400
    assert snap.columns == list(first.columns)
    assert snap.source == "ames.csv"
    assert Path(snap.path) == tmp_path / f"{snap.hash}.parquet"
    back = snap.read()
    assert content_hash(back) == snap.hash == content_hash(first)
    pd.testing.assert_frame_equal(back, first.reset_index(drop=True), check_dtype=False)


def test_same_data_is_stored_once_and_never_rewritten(tmp_path: Path, first: pd.DataFrame) -> None:
    snap = write_snapshot(first, "a.csv", tmp_path)
    data_file = Path(snap.path)
    meta_file = tmp_path / f"{snap.hash}.json"
    before = (data_file.stat().st_mtime_ns, data_file.read_bytes(), meta_file.read_bytes())

    # the same rows under another index and from another source name the same snapshot
    again = write_snapshot(first.set_axis(range(5000, 5400)), "copy-of-a.csv", tmp_path)

    assert again.hash == snap.hash
    assert again.source == "a.csv"  # the first ingest's record stays
    assert again.created_at == snap.created_at
    assert files(tmp_path, "*.parquet") == [f"{snap.hash}.parquet"]
    assert files(tmp_path, "*.json") == [f"{snap.hash}.json"]
    assert (data_file.stat().st_mtime_ns, data_file.read_bytes(), meta_file.read_bytes()) == before
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_different_data_gets_a_new_snapshot(tmp_path: Path, first: pd.DataFrame, second: pd.DataFrame) -> None:
    a = write_snapshot(first, "a.csv", tmp_path)
    b = write_snapshot(second, "b.csv", tmp_path)
    assert a.hash != b.hash
    assert files(tmp_path, "*.parquet") == sorted([f"{a.hash}.parquet", f"{b.hash}.parquet"])
    assert b.rows == 300
    assert load_snapshot(tmp_path, a.hash).read()["Sale_Price"].tolist() == first["Sale_Price"].tolist()


def test_metadata_file_describes_the_snapshot(tmp_path: Path, first: pd.DataFrame) -> None:
    snap = write_snapshot(first, "a.csv", tmp_path)
    meta = json.loads((tmp_path / f"{snap.hash}.json").read_text())
    assert meta["hash"] == snap.hash
    assert meta["rows"] == 400
    assert meta["source"] == "a.csv"
    assert meta["columns"][-3:] == ["Sale_Price", "Longitude", "Latitude"]


# ------------------------------------------------------------------------------ order and lookup


def test_latest_follows_ingest_order(tmp_path: Path, first: pd.DataFrame, second: pd.DataFrame) -> None:
    a = write_snapshot(first, "a.csv", tmp_path)
    assert latest_snapshot(tmp_path).hash == a.hash
    b = write_snapshot(second, "b.csv", tmp_path)
    assert latest_snapshot(tmp_path).hash == b.hash
    assert [s.hash for s in list_snapshots(tmp_path)] == [a.hash, b.hash]
    # ingesting the first data again makes it the latest, without a duplicate in the listing
    write_snapshot(first, "a.csv", tmp_path)
    assert latest_snapshot(tmp_path).hash == a.hash
    assert [s.hash for s in list_snapshots(tmp_path)] == [b.hash, a.hash]


def test_empty_folder_has_no_latest(tmp_path: Path) -> None:
    assert list_snapshots(tmp_path) == []
    with pytest.raises(SourceError, match="mloop ingest"):
        latest_snapshot(tmp_path)


def test_lookup_by_unique_prefix(tmp_path: Path, first: pd.DataFrame, second: pd.DataFrame) -> None:
    a = write_snapshot(first, "a.csv", tmp_path)
    write_snapshot(second, "b.csv", tmp_path)
    assert load_snapshot(tmp_path, a.hash[:6]).hash == a.hash
    assert load_snapshot(tmp_path, a.hash[:12]).hash == a.hash
    assert load_snapshot(tmp_path, a.hash).path == str(tmp_path / f"{a.hash}.parquet")


def test_lookup_refuses_short_unknown_and_ambiguous_prefixes(tmp_path: Path, first: pd.DataFrame) -> None:
    a = write_snapshot(first, "a.csv", tmp_path)
    with pytest.raises(SourceError, match="no snapshot matches"):
        load_snapshot(tmp_path, a.hash[:5])  # too short to be trusted
    with pytest.raises(SourceError, match="no snapshot matches"):
        load_snapshot(tmp_path, "ffffffffffff" if not a.hash.startswith("f") else "000000000000")
    # a second snapshot whose hash shares the first 8 characters makes that prefix ambiguous
    twin = a.hash[:8] + ("0" if a.hash[8] != "0" else "1") * 56
    meta = json.loads((tmp_path / f"{a.hash}.json").read_text())
    (tmp_path / f"{twin}.json").write_text(json.dumps({**meta, "hash": twin}))
    with pytest.raises(SourceError, match="several snapshots"):
        load_snapshot(tmp_path, a.hash[:8])
    assert load_snapshot(tmp_path, a.hash[:9]).hash == a.hash


def test_files_beside_a_snapshot_do_not_make_its_hash_ambiguous(tmp_path: Path, first: pd.DataFrame) -> None:
    """`mloop validate` writes ``<hash>.validation.json`` next to ``<hash>.json``."""
    a = write_snapshot(first, "a.csv", tmp_path)
    (tmp_path / f"{a.hash}.validation.json").write_text('{"passed": true}')
    assert load_snapshot(tmp_path, a.hash).hash == a.hash
    assert load_snapshot(tmp_path, a.hash[:8]).hash == a.hash
    assert [s.hash for s in list_snapshots(tmp_path)] == [a.hash]
    assert write_snapshot(first, "a.csv", tmp_path).hash == a.hash  # re-ingest after validation
