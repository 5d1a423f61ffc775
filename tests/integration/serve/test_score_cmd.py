"""`mloop score INPUT -o OUTPUT`: the real CLI on the project's CSV, in chunks, CSV and Parquet out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.helpers.cli import mloop

from mloop.data.contract import coerce_frame
from mloop.project import Project

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_score_writes_predictions_beside_the_input_columns(
    project: Project, champion: Any, tmp_path: Path, suffix: str
) -> None:
    source = project.root / "train.csv"
    output = tmp_path / f"scored{suffix}"

    done = mloop(
        "score", str(source), "-o", str(output), "--chunk-rows", "128", "--json", project=project, cwd=project.root
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = pd.read_csv(source)
    assert report == {"rows": len(rows), "output": str(output), "model_version": champion[2], "fast_path": True}
    scored = pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output)
    assert list(scored.columns) == [*rows.columns, "prediction"]
    want = champion[0].predict(coerce_frame(rows, champion[1]))
    assert np.allclose(scored["prediction"].to_numpy(), want, rtol=1e-12, atol=0)
    assert scored["Mas_Vnr_Type"].isna().sum() == rows["Mas_Vnr_Type"].isna().sum()


def test_score_names_a_missing_feature_column(project: Project, champion: Any, tmp_path: Path) -> None:
    source = tmp_path / "partial.csv"
    pd.read_csv(project.root / "train.csv").drop(columns=["Gr_Liv_Area"]).head(5).to_csv(source, index=False)

    done = mloop("score", str(source), "-o", str(tmp_path / "out.csv"), project=project, cwd=project.root)

    assert done.returncode != 0
    assert "Gr_Liv_Area" in done.stderr and "Traceback" not in done.stderr
