"""s3:// sources through fsspec against a real S3 server on 127.0.0.1 (Ceph's RADOS Gateway)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mloop.data.sources import read_source
from mloop.errors import SourceError
from mloop.pipeline import stages
from mloop.project import Project

from .conftest import S3_SECRET_KEY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str, ames: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    import s3fs

    sample = ames.iloc[:250].reset_index(drop=True)
    fs: Any = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir("mloop-data")
    with fs.open("mloop-data/houses.csv", "wb") as handle:
        handle.write(sample.to_csv(index=False).encode())
    with fs.open("mloop-data/houses.parquet", "wb") as handle:
        handle.write(sample.to_parquet(index=False))
    with fs.open("mloop-data/houses.jsonl", "wb") as handle:
        handle.write(sample.to_json(orient="records", lines=True).encode())
    with fs.open("mloop-data/latin1.csv", "wb") as handle:
        handle.write("name,price\nCafé,1\n".encode("latin-1"))
    return s3_endpoint, sample


@pytest.mark.parametrize("name", ["houses.csv", "houses.parquet", "houses.jsonl"])
def test_reads_each_format_from_s3(bucket: tuple[str, pd.DataFrame], name: str) -> None:
    endpoint, sample = bucket
    frame = read_source(f"s3://mloop-data/{name}", endpoint_url=endpoint)
    assert list(frame.columns) == list(sample.columns)
    assert frame["Sale_Price"].tolist() == sample["Sale_Price"].tolist()


def test_s3_failures_say_what_and_where(bucket: tuple[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, _ = bucket
    for uri in ("s3://mloop-data/missing.csv", "s3://no-such-bucket/houses.csv"):
        with pytest.raises(SourceError, match="no such object") as info:
            read_source(uri, endpoint_url=endpoint)
        assert uri in info.value.message and endpoint in info.value.message
    with pytest.raises(SourceError, match="UTF-8"):
        read_source("s3://mloop-data/latin1.csv", endpoint_url=endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + S3_SECRET_KEY)
    with pytest.raises(SourceError) as info:
        read_source("s3://mloop-data/houses.csv", endpoint_url=endpoint)
    assert "s3://mloop-data/houses.csv" in info.value.message
    assert S3_SECRET_KEY not in info.value.message


def test_ingest_from_s3_with_the_endpoint_in_mloop_yaml(bucket: tuple[str, pd.DataFrame], tmp_path: Path) -> None:
    endpoint, sample = bucket
    data = {
        "source": "s3://mloop-data/houses.csv",
        "target": "Sale_Price",
        "s3_endpoint_url": endpoint,
        "versioning": "off",
    }
    (tmp_path / "mloop.yaml").write_text(yaml.safe_dump({"name": "s3", "data": data}), encoding="utf-8")
    result = stages.ingest(Project.load(tmp_path / "mloop.yaml"))
    assert result.snapshot.rows == len(sample) and result.snapshot.source == "s3://mloop-data/houses.csv"
    assert result.contract_created


def test_dvc_remote_on_s3(bucket: tuple[str, pd.DataFrame], tmp_path: Path) -> None:
    """Snapshots pushed to a DVC remote in the S3 server come back after the local cache is gone."""
    import shutil

    from mloop.data import versioning

    if not versioning.available():
        pytest.skip("DVC is not installed (pip install 'mloop[dvc]')")
    endpoint, sample = bucket
    import s3fs

    fs: Any = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.mkdir("mloop-dvc")
    data = {
        "source": "s3://mloop-data/houses.csv",
        "target": "Sale_Price",
        "s3_endpoint_url": endpoint,
        "versioning": "dvc",
        "dvc_remote": "s3://mloop-dvc/store",
    }
    (tmp_path / "mloop.yaml").write_text(yaml.safe_dump({"name": "s3", "data": data}), encoding="utf-8")
    project = Project.load(tmp_path / "mloop.yaml")
    stages.ingest(project)
    snapshot, report = stages.validate(project)
    assert report.passed and versioning.dvc_file(snapshot).is_file()
    assert fs.find("mloop-dvc/store"), "the snapshot was not pushed to the S3 remote"
    before = Path(snapshot.path).read_bytes()
    shutil.rmtree(tmp_path / ".dvc" / "cache")
    Path(snapshot.path).unlink()
    assert versioning.restore(project.root, project.config.data, snapshot) == "remote"
    assert Path(snapshot.path).read_bytes() == before
    assert "secret" not in (tmp_path / ".dvc" / "config").read_text().lower()
