"""Quality estimated before labels: trained with the version, shown by `mloop monitor` beside live quality.

Real MLflow store, real training runs, the real prediction log: the regression case reads the monitored
Ames champion of conftest.py (traffic through a real uvicorn server), the classification case logs the
champion's own predictions on unseen breast-cancer rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from tests.helpers.projects import init_project_on
from tests.integration.monitor.conftest import Monitored

from mloop.core.metrics import classification_metrics
from mloop.data.predictions import PredictionRow, utc_now
from mloop.monitor.runner import load_reference, monitor
from mloop.pipeline import stages
from mloop.registry.estimator import ESTIMATOR_ARTIFACT
from mloop.registry.versions import client, load_model

pytestmark = pytest.mark.integration


def test_a_regression_window_is_estimated_beside_its_live_quality(monitored: Monitored) -> None:
    latest: dict[str, Any] = monitored.latest
    estimated, live = latest["estimated_quality"], latest["quality"]
    assert set(estimated) == {"mae", "rmse"}
    # The drifted window (living areas x1.8): the estimate sees larger errors coming, as the labels then show.
    assert estimated["rmse"] == pytest.approx(live["rmse"], rel=0.5)
    trained = latest["training_quality"]["rmse"]
    assert latest["estimated_decay"] == pytest.approx((estimated["rmse"] - trained) / trained)
    reference = load_reference(monitored.project)
    assert reference.estimator is not None and reference.estimator.task == "regression"


def test_a_classifier_window_is_estimated_from_calibrated_probabilities(tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frame))
    train, live = frame.iloc[order[:420]].reset_index(drop=True), frame.iloc[order[420:]].reset_index(drop=True)
    project = init_project_on(tmp_path, train, "target")
    stages.run(project)
    reference = load_reference(project)
    assert reference.estimator is not None and reference.estimator.classes is not None
    model = load_model(project, reference.version.version)
    features = live.drop(columns=["target"])
    predicted = [str(p) for p in model.predict(features)]
    now = utc_now()
    rows = [
        PredictionRow(f"r{i}", now, reference.version.version, record, answer, 1.0)
        for i, (record, answer) in enumerate(zip(features.to_dict(orient="records"), predicted, strict=True))
    ]
    project.prediction_store().write_many(rows)
    result = monitor(project, last=len(rows))
    realised = classification_metrics(
        live["target"].astype(str), predicted, model.predict_proba(features), reference.estimator.classes
    )
    assert result.quality == {}  # no label has arrived …
    assert set(result.estimated_quality) == {"accuracy", "f1", "roc_auc"}  # … and the estimate is there
    for metric in ("accuracy", "f1", "roc_auc"):
        assert result.estimated_quality[metric] == pytest.approx(realised[metric], abs=0.08), metric


def test_a_version_without_an_estimator_is_monitored_without_an_estimate(monitored: Monitored) -> None:
    """As for a version trained before estimators existed: its windows have live quality and no estimate."""
    reference = load_reference(monitored.project)
    uri = client(monitored.project).get_run(reference.version.run_id).info.artifact_uri
    artifact = Path(uri.removeprefix("file://")) / ESTIMATOR_ARTIFACT
    assert artifact.is_file(), uri  # the project's artifact store is a local folder
    saved = artifact.read_bytes()
    artifact.unlink()
    try:
        assert load_reference(monitored.project).estimator is None
        result = monitor(monitored.project, write=False)
        assert result.estimated_quality == {} and result.estimated_decay is None
        assert result.quality  # live quality as before
    finally:
        artifact.write_bytes(saved)
