"""`mloop monitor` numbers its window from a tally of the rows counted before, not by counting all history."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from tests.helpers.projects import init_project_on

from mloop.data.predictions import PredictionRow
from mloop.monitor.runner import COUNTS, monitor
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version

pytestmark = pytest.mark.integration
START = pd.Timestamp("2026-01-01", tz="UTC")


def _log(project: Project, version: str, first: int, n: int) -> None:
    features = load_diabetes(as_frame=True).frame.drop(columns=["target"])
    records = features.sample(n=n, replace=True, random_state=first).to_dict(orient="records")
    stamps = [(START + pd.Timedelta(seconds=first + i)).isoformat(timespec="microseconds") for i in range(n)]
    project.prediction_store().write_many(
        [PredictionRow(f"r{first + i}", stamps[i], version, records[i], 150.0, 1.0) for i in range(n)]
        + [PredictionRow(f"r{first + i}:shadow", stamps[i], version, records[i], 151.0, 1.0) for i in range(0, n, 7)]
    )


def test_the_window_number_counts_every_served_row_once_across_runs(tmp_path: Path) -> None:
    project = init_project_on(tmp_path, load_diabetes(as_frame=True).frame, "target", dvc=False)
    stages.run(project)
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    _log(project, champion.version, 0, 450)
    assert monitor(project, last=100).index == 4  # rows 0-449: the fifth window of 100
    tally = json.loads((project.monitor_dir / COUNTS).read_text())[champion.version]
    assert tally["rows_before"] == 449 and tally["ts"].startswith("2026-01-01T00:07:29")  # all but the newest row
    _log(project, champion.version, 450, 301)
    assert monitor(project, last=100).index == 7  # 751 served rows (shadow rows are not counted)
    assert monitor(project, last=100).index == 7  # nothing new: the same window, counted the same
    assert monitor(project, last=100, write=False).index == 7
    (project.monitor_dir / COUNTS).unlink()  # no tally: everything is counted again, to the same number
    assert monitor(project, last=100).index == 7
    (project.monitor_dir / COUNTS).write_text("not json")  # an unreadable tally is a count from the start
    assert monitor(project, last=100).index == 7
