"""`mloop score --engine spark` on a real local[2] Spark: the same answers as in process, row by row.

A real Ames champion scores 1,000,000 rows (the Ames houses repeated, in Parquet files) through
``mapInArrow``; every row must get exactly the prediction ``score_file`` gives its house in process. The
workers' model loads are counted by the job's own accumulator (one per Python worker, however many tasks);
a batch with 1% bad rows sets exactly those aside with the column named; a classifier's probabilities match.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from tests.helpers.cli import failed, mloop, mloop_json
from tests.helpers.projects import early_sales, init_project_on, train_champion, write_project

from mloop.errors import ServeError
from mloop.project import Project
from mloop.serve.batch import score_file
from mloop.spark.scoring import score_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

ROWS = 1_000_000
FILES = 8
HOUSE = "house"  # the Ames row a scored row repeats: not a feature, passed through to the output


@pytest.fixture(scope="module")
def champion(ames: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return train_champion(write_project(tmp_path_factory.mktemp("spark-ames"), early_sales(ames), "ames-spark"))


@pytest.fixture(scope="module")
def houses(ames: pd.DataFrame) -> pd.DataFrame:
    """Every Ames house (sold in any year), with its row number as ``house``."""
    return ames.assign(**{HOUSE: np.arange(len(ames))})


@pytest.fixture(scope="module")
def expected(champion: Project, houses: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """In-process ``score_file`` of every house: what each repeated row must get on Spark."""
    folder = tmp_path_factory.mktemp("in-process")
    houses.to_parquet(folder / "houses.parquet", index=False)
    score_file(champion, folder / "houses.parquet", folder / "scored.parquet")
    return pd.read_parquet(folder / "scored.parquet").set_index(HOUSE)


def _repeat(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame.iloc[np.arange(rows) % len(frame)].reset_index(drop=True)


def _write_parts(frame: pd.DataFrame, folder: Path, parts: int) -> Path:
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[part].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    return folder


def test_a_million_rows_score_as_in_process_with_one_model_load_per_worker(
    spark: SparkSession, champion: Project, houses: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    source = _write_parts(_repeat(houses, ROWS), tmp_path / "input", FILES)
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(4 << 20))  # many more tasks than workers
    try:
        tasks = spark.read.parquet(str(source)).rdd.getNumPartitions()
        result = score_table(champion, source, tmp_path / "scored", spark=spark)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)

    assert (result.rows, result.rejected, result.fast_path) == (ROWS, 0, True)
    scored = pd.read_parquet(tmp_path / "scored")
    assert list(scored.columns) == [*houses.columns, "prediction"]
    assert len(scored) == ROWS and scored[HOUSE].value_counts().min() >= ROWS // len(houses)
    want = expected.loc[scored[HOUSE], "prediction"].to_numpy()
    got = scored["prediction"].to_numpy()
    assert np.array_equal(got, want), f"largest difference {np.max(np.abs(got - want))}"
    # Input columns come back as they went in (a few rows compared whole).
    sample = scored.sample(1000, random_state=0)
    pd.testing.assert_frame_equal(
        sample[houses.columns].reset_index(drop=True),
        houses.iloc[sample[HOUSE]].reset_index(drop=True),
        check_dtype=False,
    )
    # One load per executor Python worker, counted by the job's accumulator, whatever the number of tasks.
    loads = result.model_loads
    assert loads is not None and 1 <= len(loads) <= 2, loads
    assert set(loads.values()) == {1}, loads
    assert tasks >= 4 * len(loads), (tasks, loads)
    assert len(list((tmp_path / "scored").glob("part-*.parquet"))) > 1  # partitioned
    assert pd.read_parquet(tmp_path / "scored_rejects").empty


def test_one_percent_bad_rows_go_to_rejects_naming_the_column(
    spark: SparkSession, champion: Project, houses: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    rows = 20_000
    frame = _repeat(houses, rows)
    frame["Gr_Liv_Area"] = frame["Gr_Liv_Area"].astype(object)
    rng = np.random.default_rng(7)
    bad = rng.choice(rows, size=rows // 100, replace=False)
    text_rows, null_rows = bad[: len(bad) // 2], bad[len(bad) // 2 :]
    frame.loc[text_rows, "Gr_Liv_Area"] = "about 1500"  # text in an integer column
    frame["Gr_Liv_Area"] = frame["Gr_Liv_Area"].astype(str)  # the whole column is text, as a CSV export gives it
    frame["Lot_Area"] = frame["Lot_Area"].astype("Float64")
    frame.loc[null_rows, "Lot_Area"] = None  # the contract says Lot_Area is never null
    frame["row"] = np.arange(rows)
    source = _write_parts(frame, tmp_path / "input", 3)

    result = score_table(champion, source, tmp_path / "scored", rejects=tmp_path / "bad", spark=spark)

    assert (result.rows, result.rejected) == (rows - len(bad), len(bad))
    rejects = pd.read_parquet(tmp_path / "bad").set_index("row").sort_index()
    assert sorted(rejects.index) == sorted(bad.tolist())
    assert list(rejects.columns) == [c for c in frame.columns if c != "row"] + ["reason"]
    assert rejects.loc[text_rows, "reason"].eq("Gr_Liv_Area: the value 'about 1500' is not an integer").all()
    assert (
        rejects.loc[null_rows, "reason"].eq("Lot_Area: missing, but the contract says the column is never null").all()
    )
    assert rejects.loc[text_rows, "Gr_Liv_Area"].eq("about 1500").all()  # the row's input, as it was
    scored = pd.read_parquet(tmp_path / "scored")
    assert sorted(scored["row"]) == sorted(set(range(rows)) - set(bad.tolist()))
    want = expected.loc[scored[HOUSE], "prediction"].to_numpy()
    assert np.array_equal(scored["prediction"].to_numpy(), want)


def test_a_classifier_gives_the_same_labels_and_probabilities(spark: SparkSession, tmp_path: Path) -> None:
    cancer = load_breast_cancer(as_frame=True).frame
    project = train_champion(init_project_on(tmp_path, cancer, "target", task="classification", no_scm=True))
    source = _write_parts(_repeat(cancer.drop(columns="target"), 50_000), tmp_path / "input", 4)
    (tmp_path / "whole").mkdir()
    for i, part in enumerate(sorted(source.glob("*.parquet"))):
        score_file(project, part, tmp_path / "whole" / f"{i}.parquet")

    result = score_table(project, source, tmp_path / "scored", spark=spark)

    assert (result.rows, result.rejected) == (50_000, 0)
    want = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "whole").glob("*.parquet"))], ignore_index=True)
    got = pd.read_parquet(tmp_path / "scored")
    classes = [c for c in want.columns if c.startswith("probability_")]
    assert classes == ["probability_0", "probability_1"] and list(got.columns) == list(want.columns)
    key = list(cancer.columns.drop("target"))
    got = got.sort_values(key, kind="stable").reset_index(drop=True)
    want = want.sort_values(key, kind="stable").reset_index(drop=True)
    assert got["prediction"].tolist() == want["prediction"].tolist()
    np.testing.assert_allclose(got[classes].to_numpy(), want[classes].to_numpy(), rtol=0, atol=1e-12)


def test_a_dataframe_scores_on_its_own_session(
    spark: SparkSession, champion: Project, houses: pd.DataFrame, expected: pd.DataFrame, tmp_path: Path
) -> None:
    frame = spark.createDataFrame(houses.head(2000)).repartition(3)  # a table Spark read (a Delta table, say)

    result = score_table(champion, frame, tmp_path / "scored")

    assert (result.rows, result.rejected) == (2000, 0)
    scored = pd.read_parquet(tmp_path / "scored")
    assert np.array_equal(scored["prediction"].to_numpy(), expected.loc[scored[HOUSE], "prediction"].to_numpy())
    assert result.model_loads is not None and sum(result.model_loads.values()) <= 2  # kept by earlier jobs' workers


def test_refusals_say_what_is_wrong(spark: SparkSession, champion: Project, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="does not exist"):
        score_table(champion, tmp_path / "nowhere.parquet", tmp_path / "out", spark=spark)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ServeError, match="Spark did not write"):
        score_table(champion, tmp_path / "in.parquet", tmp_path / "notes", spark=spark)
    with pytest.raises(ServeError, match="lacks feature column"):
        score_table(champion, tmp_path / "in.parquet", tmp_path / "out", spark=spark)
    assert (tmp_path / "notes" / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_cli_scores_a_csv_on_spark(champion: Project, houses: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "houses.csv"
    houses.head(500).to_csv(source, index=False)

    report = mloop_json(
        "score", str(source), "-o", str(tmp_path / "out"), "--engine", "spark", "--json", project=champion
    )

    assert report["rows"] == 500 and report["rejected"] == 0 and report["engine"] == "spark"
    assert report["rejects"] == str(tmp_path / "out") + "_rejects"
    scored = pd.read_parquet(tmp_path / "out")
    assert len(scored) == 500 and "prediction" in scored.columns


def test_cli_errors_have_no_traceback(champion: Project, tmp_path: Path) -> None:
    missing = failed(
        mloop("score", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o"), "--engine", "spark", project=champion)
    )
    assert "does not exist" in missing and "Traceback" not in missing
    wrong = failed(mloop("score", "x.csv", "-o", "o", "--engine", "dask", project=champion))
    assert "--engine must be local or spark" in wrong
    empty = write_project(tmp_path / "empty", pd.DataFrame({"Sale_Price": [1.0], "Year_Sold": [2006]}), "no-champion")
    (tmp_path / "in.csv").write_text("a\n1\n", encoding="utf-8")
    none = failed(
        mloop("score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o"), "--engine", "spark", project=empty)
    )
    assert "no 'champion' version" in none and "Traceback" not in none
