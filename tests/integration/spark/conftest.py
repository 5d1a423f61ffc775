"""One real local Spark session (``local[2]``) for the Spark engine's tests, started as mloop starts it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from mloop.config import SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER = "local[2]"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'mloop[spark]'")
    if shutil.which("java") is None:
        pytest.skip("Java is not installed (Debian: apt-get install default-jre-headless)")
    from mloop.spark.session import spark_session

    session = spark_session(SparkConfig(master=MASTER, conf={"spark.sql.shuffle.partitions": "4"}))
    yield session
    session.stop()
