"""Every source scheme against the real thing: SQLite files, the local PostgreSQL, a local HTTP server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from tests.helpers.projects import write_config
from tests.helpers.servers import free_port

from mloop.data.sources import read_source
from mloop.errors import SourceError
from mloop.pipeline import stages
from mloop.project import Project

from .conftest import POSTGRES_URL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sample(ames: pd.DataFrame) -> pd.DataFrame:
    return ames.iloc[:300].reset_index(drop=True).assign(sale_id=np.arange(1, 301))


def error_of(source: str, query: str | None = None) -> str:
    with pytest.raises(SourceError) as info:
        read_source(source, query)
    return info.value.message


def same_table(frame: pd.DataFrame, sample: pd.DataFrame) -> None:
    assert list(frame.columns) == list(sample.columns)
    assert len(frame) == len(sample)
    assert frame["Sale_Price"].tolist() == sample["Sale_Price"].tolist()
    assert frame["Neighborhood"].tolist() == sample["Neighborhood"].tolist()


# ------------------------------------------------------------------------------------------ SQLite


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory, sample: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "houses.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        sample.to_sql("houses", conn, index=False)
        conn.execute(sa.text("CREATE TABLE empty (a INTEGER, b TEXT)"))
    engine.dispose()
    return path


def test_sqlite_query_and_table_name(sqlite_db: Path, sample: pd.DataFrame) -> None:
    same_table(read_source(f"sqlite:///{sqlite_db}", "SELECT * FROM houses"), sample)
    same_table(read_source(f"sqlite:///{sqlite_db}", "houses"), sample)
    few = read_source(f"sqlite:///{sqlite_db}", "SELECT Sale_Price, Lot_Area FROM houses WHERE Sale_Price > 200000;")
    assert len(few) == int((sample["Sale_Price"] > 200000).sum())


def test_sqlite_failures_say_what_and_where(sqlite_db: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    message = error_of(f"sqlite:///{missing}", "houses")
    assert str(missing) in message and "no such SQLite database" in message
    assert not missing.exists(), "reading must not create an empty database"
    message = error_of(f"sqlite:///{sqlite_db}", "SELECT * FROM no_such_table")
    assert "query failed" in message and "no_such_table" in message and str(sqlite_db) in message
    message = error_of(f"sqlite:///{sqlite_db}", "empty")
    assert "no rows" in message
    assert "data.query" in error_of(f"sqlite:///{sqlite_db}")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "fake.db"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    message = error_of(f"sqlite:///{path}", "houses")
    assert str(path) in message


# -------------------------------------------------------------------------------------- PostgreSQL


def test_postgres_query_and_table(postgres: str, sample: pd.DataFrame) -> None:
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        sample.to_sql("houses", conn, schema=postgres, index=False)
    engine.dispose()
    same_table(read_source(POSTGRES_URL, f"SELECT * FROM {postgres}.houses ORDER BY sale_id"), sample)
    assert len(read_source(POSTGRES_URL, f"{postgres}.houses")) == len(sample)


def test_postgres_query_error_and_empty_result(postgres: str) -> None:
    message = error_of(POSTGRES_URL, f"SELECT * FROM {postgres}.missing")
    assert "query failed" in message and "missing" in message and "127.0.0.1:5432/test" in message
    message = error_of(POSTGRES_URL, "SELECT 1 AS a, 2 AS b WHERE false")
    assert "no rows" in message


def test_unreachable_database_hides_credentials(postgres: str) -> None:
    port = free_port()
    message = error_of(f"postgresql://alice:s3cr3t-pw@127.0.0.1:{port}/test", "SELECT 1")
    assert f"127.0.0.1:{port}/test" in message and "cannot connect" in message
    assert "s3cr3t-pw" not in message and "alice" not in message


def test_wrong_password_hides_credentials(postgres: str) -> None:
    message = error_of("postgresql://no_such_user_x:s3cr3t-pw@127.0.0.1:5432/test", "SELECT 1")
    assert "cannot connect" in message
    assert "s3cr3t-pw" not in message and "no_such_user_x" not in message


# -------------------------------------------------------------------------------------------- HTTP


def test_http_csv_json_and_jsonl(http_root: tuple[Path, str], sample: pd.DataFrame) -> None:
    root, base = http_root
    sample.to_csv(root / "houses.csv", index=False)
    sample.to_csv(root / "houses.csv.gz", index=False)
    sample.to_json(root / "houses.json", orient="records")
    sample.to_json(root / "houses.jsonl", orient="records", lines=True)
    for name in ("houses.csv", "houses.csv.gz", "houses.json", "houses.jsonl"):
        same_table(read_source(f"{base}/{name}"), sample)


def test_http_failures_say_what_and_where(http_root: tuple[Path, str]) -> None:
    root, base = http_root
    message = error_of(f"{base}/missing.csv")
    assert f"{base}/missing.csv" in message and "HTTP 404" in message
    (root / "latin1.csv").write_bytes("name,price\nCafé Ürün,1\n".encode("latin-1"))
    message = error_of(f"{base}/latin1.csv")
    assert "latin1.csv" in message and "UTF-8" in message
    (root / "broken.json").write_text("[{,", encoding="utf-8")
    assert "not a readable json table" in error_of(f"{base}/broken.json")
    port = free_port()
    message = error_of(f"http://user:token@127.0.0.1:{port}/data.csv?key=abc")
    assert f"127.0.0.1:{port}/data.csv" in message and "cannot download" in message
    assert "token" not in message and "abc" not in message


# ------------------------------------------------------------------------------------- incremental


def incremental_project(root: Path, source: str, query: str | None, column: str) -> Project:
    data = {"source": source, "target": "Sale_Price", "incremental_column": column, "versioning": "off"}
    if query:
        data["query"] = query
    return write_config(root, {"name": "inc", "data": data})


def test_incremental_sqlite_appends_only_new_rows(tmp_path: Path, sample: pd.DataFrame) -> None:
    db = tmp_path / "sales.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        sample.iloc[:200].to_sql("sales", conn, index=False)
    project = incremental_project(tmp_path / "p", "sqlite:///../sales.db", "sales", "sale_id")
    first = stages.ingest(project)
    assert first.snapshot.rows == 200 and first.added_rows is None
    with engine.begin() as conn:
        sample.iloc[200:].to_sql("sales", conn, index=False, if_exists="append")
    engine.dispose()
    second = stages.ingest(project)
    assert second.added_rows == 100 and second.snapshot.parent == first.snapshot.hash
    assert second.snapshot.rows == 300
    assert second.snapshot.read()["sale_id"].tolist() == sample["sale_id"].tolist()
    again = stages.ingest(project)
    assert again.added_rows == 0 and again.snapshot.hash == second.snapshot.hash


def test_incremental_postgres_by_time_column(postgres: str, tmp_path: Path) -> None:
    times = pd.date_range("2024-01-01", periods=10, freq="D")
    rows = pd.DataFrame({"sold_at": times, "area": np.arange(10.0), "Sale_Price": np.arange(10) * 1000})
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        rows.iloc[:6].to_sql("sales", conn, schema=postgres, index=False)
    project = incremental_project(tmp_path, POSTGRES_URL, f"SELECT * FROM {postgres}.sales", "sold_at")
    assert stages.ingest(project).snapshot.rows == 6
    with engine.begin() as conn:
        rows.iloc[6:].to_sql("sales", conn, schema=postgres, index=False, if_exists="append")
    engine.dispose()
    result = stages.ingest(project)
    assert result.added_rows == 4 and result.snapshot.rows == 10
    assert result.snapshot.read()["sold_at"].tolist() == times.tolist()


def test_incremental_file_by_id(tmp_path: Path, sample: pd.DataFrame) -> None:
    csv = tmp_path / "houses.csv"
    sample.iloc[:100].to_csv(csv, index=False)
    project = incremental_project(tmp_path / "p", "../houses.csv", None, "sale_id")
    first = stages.ingest(project)
    sample.to_csv(csv, index=False)
    second = stages.ingest(project)
    assert (first.snapshot.rows, second.added_rows, second.snapshot.rows) == (100, 200, 300)
