"""Multivariate drift, wired: fitted with the training run, judged by `mloop monitor`, exported and reported.

Real MLflow store and training runs, the real prediction log; the served case reads the monitored Ames
champion of conftest.py (traffic through a real uvicorn server).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.helpers.cli import failed, mloop, mloop_json
from tests.helpers.projects import configure, early_sales, train_champion, write_project
from tests.integration.monitor.conftest import Monitored

from mloop.data.contract import load_contract
from mloop.data.multivariate import ARTIFACT
from mloop.data.predictions import PredictionRow, utc_now
from mloop.monitor.report import render_report
from mloop.monitor.runner import history, load_reference, monitor
from mloop.project import Project
from mloop.registry.versions import client

pytestmark = pytest.mark.integration


def test_a_served_window_with_inflated_areas_drifts_together_and_is_exported(monitored: Monitored) -> None:
    latest: dict[str, Any] = monitored.latest
    together = latest["multivariate"]
    # Living and lot areas x1.8 and x2.5: a shift along the features the domain classifier sees at once.
    assert together["domain_classifier"]["rows_per_side"] == 200
    assert together["domain_classifier"]["auroc"] > together["domain_classifier"]["threshold"]
    assert together["drifted"] and together["domain_classifier"]["drifted"]
    reconstruction = together["reconstruction"]
    assert reconstruction["error"] > 0 and reconstruction["threshold"] > reconstruction["reference"] > 0

    with monitored.server.client() as http:
        scraped = http.get("/metrics").text
    assert "mloop_multivariate_drift_detected 1.0" in scraped
    assert 'mloop_multivariate_statistic{statistic="domain_auroc"}' in scraped
    assert 'mloop_multivariate_threshold{statistic="reconstruction_error"}' in scraped

    page = render_report(monitored.project)
    assert "<h2>Multivariate drift</h2>" in page and "domain classifier AUROC per window" in page
    assert "no data yet" not in page.split("<h2>Multivariate drift</h2>")[1].split("<h2>")[0]


def test_the_classifier_threshold_is_calibrated_once_per_window_size(monitored: Monitored) -> None:
    reference = load_reference(monitored.project)
    assert reference.multivariate is not None
    cached = monitored.project.monitor_dir / "multivariate" / f"{reference.version.run_id}.json"
    stored = json.loads(cached.read_text(encoding="utf-8"))
    assert list(stored["classifier_null"]) == ["200"]  # the size the two windows were judged at
    assert reference.multivariate.classifier_null == {200: tuple(stored["classifier_null"]["200"])}
    cached.write_text("{not json", encoding="utf-8")  # a damaged copy costs a recalibration, not the run
    again = monitor(monitored.project, write=False)
    assert again.multivariate is not None and again.multivariate.to_dict() == monitored.latest["multivariate"]
    assert json.loads(cached.read_text(encoding="utf-8"))["classifier_null"] == stored["classifier_null"]


def _log(project: Project, window: pd.DataFrame, prefix: str = "mv") -> int:
    """Log ``window`` as the champion's traffic (predictions are not what this judges)."""
    version = load_reference(project).version.version
    features = load_contract(project.contract_path).features
    now = utc_now()
    rows = [
        PredictionRow(f"{prefix}{i}", now, version, record, 180000.0, 1.0)
        for i, record in enumerate(window[features].to_dict(orient="records"))
    ]
    project.prediction_store().write_many(rows)
    return len(rows)


SEEN = 800  # of the 1,319 sales of 2006-2007, a random sample training sees; the rest are the window


@pytest.fixture(scope="module")
def early(ames: pd.DataFrame) -> pd.DataFrame:
    return early_sales(ames).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, early: pd.DataFrame) -> Project:
    return train_champion(write_project(tmp_path_factory.mktemp("mv") / "ames", early.head(SEEN), "ames-mv"))


def test_a_broken_relation_between_features_alarms_where_no_single_feature_drifts(
    trained: Project, early: pd.DataFrame
) -> None:
    """Gr_Liv_Area is First_Flr_SF + Second_Flr_SF; shuffled within the window every marginal stays as it was."""
    window = early.iloc[SEEN:].copy()  # sales of the same years that training never saw
    as_sold = monitor(trained, last=_log(trained, window, "sold"))
    assert as_sold.multivariate is not None and not as_sold.multivariate.drifted, as_sold.multivariate
    window["Gr_Liv_Area"] = np.random.default_rng(0).permutation(window["Gr_Liv_Area"].to_numpy())
    result = monitor(trained, last=_log(trained, window, "shuffled"))

    assert not result.drift.dataset_drift, result.drift.drifted_features
    assert result.multivariate is not None and result.multivariate.reconstruction_drifted
    reason = result.multivariate.reason()
    assert reason is not None and reason.startswith("PCA reconstruction error")
    assert history(trained)[-1]["multivariate"]["reconstruction"]["drifted"] is True


def test_with_multivariate_monitoring_off_nothing_is_fitted_or_judged(tmp_path: Path, ames: pd.DataFrame) -> None:
    project = write_project(tmp_path / "ames", early_sales(ames, 400), "ames-mv-off")
    project = train_champion(configure(project, monitor={"multivariate": {"enabled": False}}))
    reference = load_reference(project)
    assert reference.multivariate is None
    run = client(project).get_run(reference.version.run_id)
    assert ARTIFACT not in {a.path for a in client(project).list_artifacts(run.info.run_id)}
    result = monitor(project, last=_log(project, ames[ames["Year_Sold"] >= 2008].head(200)))
    assert result.multivariate is None and result.to_dict()["multivariate"] is None


def test_monitor_days_merges_daily_profiles_from_the_command_line(monitored: Monitored) -> None:
    """`mloop monitor --days 7`: the week's drift from profiles; today's rows are read, past days are stored."""
    week = mloop_json("monitor", "--days", "7", "--json", project=monitored.project)
    assert week["n_rows"] == 400 and week["rows_read"] == 400  # both windows were logged today
    assert [d["source"] for d in week["days"]] == ["built"] * 6 + ["today"]
    assert week["report"]["dataset_drift"] is True and "Gr_Liv_Area" in week["report"]["drifted_features"]
    stored = sorted((monitored.project.monitor_dir / "profiles").rglob("*.json"))
    assert len(stored) == 6  # the six empty past days, so a rerun does not read them; today is never stored
    again = mloop_json("monitor", "--days", "7", "--json", project=monitored.project)
    assert [d["source"] for d in again["days"]] == ["stored"] * 6 + ["today"]
    assert again["report"] == week["report"]
    err = failed(mloop("monitor", "--days", "7", "--last", "50", project=monitored.project))
    assert "--days merges whole days" in err and "Traceback" not in err
