from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.cli.main import exit_code
from mloop.data.sources import read_source
from mloop.errors import SourceError

Writer = Callable[[pd.DataFrame, Path], Path]


@pytest.fixture(scope="module")
def sample(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[:400]


def source_error(path: Path | str) -> str:
    with pytest.raises(SourceError) as info:
        read_source(str(path))
    assert exit_code(info.value) == 3
    return info.value.message


# ------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("name", ["ames.csv", "ames.csv.gz", "ames.tsv", "ames.parquet", "ames.pq", "ames.jsonl"])
def test_reads_every_supported_format_with_the_same_content(
    tmp_path: Path, sample: pd.DataFrame, write_table: Writer, name: str
) -> None:
    frame = read_source(str(write_table(sample, tmp_path / name)))
    assert list(frame.columns) == list(sample.columns)
    assert len(frame) == 400
    assert frame["Sale_Price"].tolist() == sample["Sale_Price"].tolist()
    assert frame["Neighborhood"].tolist() == sample["Neighborhood"].tolist()
    assert frame["Longitude"].to_numpy() == pytest.approx(sample["Longitude"].to_numpy())
    # missing text values stay missing, whatever the format
    assert frame["Mas_Vnr_Type"].isna().sum() == sample["Mas_Vnr_Type"].isna().sum() > 0


def test_reads_the_whole_ames_file(ames_path: Path) -> None:
    frame = read_source(str(ames_path))
    assert frame.shape == (2930, 74)
    assert sorted(frame["Year_Sold"].unique().tolist()) == [2006, 2007, 2008, 2009, 2010]


def test_file_uri_and_upper_case_suffix(tmp_path: Path, sample: pd.DataFrame) -> None:
    path = tmp_path / "AMES.CSV"
    sample.to_csv(path, index=False)
    assert len(read_source(path.as_uri())) == 400


def test_column_names_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "spaced.csv"
    path.write_text(" price , rooms\n1,2\n3,4\n", encoding="utf-8")
    assert list(read_source(str(path)).columns) == ["price", "rooms"]


# ------------------------------------------------------------------------------------- failures


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such.csv"
    message = source_error(path)
    assert str(path) in message
    assert "no such file" in message


def test_a_directory_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    message = source_error(folder)
    assert str(folder) in message
    assert "directory" in message


@pytest.mark.parametrize("name", ["data.xlsx", "data.txt", "data"])
def test_unsupported_extension_lists_what_is_supported(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    message = source_error(path)
    assert str(path) in message
    assert "unsupported file type" in message
    assert ".csv" in message and ".parquet" in message


def test_unsupported_uri_scheme() -> None:
    message = source_error("ftp://example.org/data.csv")
    assert "ftp://example.org/data.csv" in message
    assert "ftp:// scheme is not supported" in message and "s3://" in message


@pytest.mark.parametrize("name", ["noise.csv", "noise.parquet", "noise.jsonl", "noise.tsv"])
def test_random_bytes_are_not_a_table(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    message = source_error(path)
    assert str(path) in message


def test_a_png_named_csv_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "picture.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    message = source_error(path)
    assert str(path) in message
    assert "UTF-8" in message


def test_one_column_text_file_is_not_a_usable_table(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("Meeting notes\nbring the data\nremember the target\n", encoding="utf-8")
    message = source_error(path)
    assert str(path) in message
    assert "1 columns" in message
    assert "two columns" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "not a readable table"),
        ("price,rooms\n", "0 rows"),
        ("a,b\n1,2\n3,4,5,6\n", "not a readable table"),
    ],
)
def test_empty_header_only_and_ragged_csv(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    message = source_error(path)
    assert str(path) in message
    assert expected in message


def test_broken_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1, "b": 2}\nthis is not json\n', encoding="utf-8")
    message = source_error(path)
    assert str(path) in message
    assert "not a readable table" in message


@pytest.mark.parametrize("name", ["houses.csv", "houses.csv.gz", "houses.tsv"])
def test_progress_counts_every_byte_of_a_text_file_and_reads_the_same_table(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame({"area": range(5000), "zone": ["A", "B"] * 2500})
    path = tmp_path / name
    frame.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    seen: list[tuple[int, int]] = []
    read = read_source(str(path), progress=lambda done, total: seen.append((done, total)))
    pd.testing.assert_frame_equal(read, read_source(str(path)))
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
