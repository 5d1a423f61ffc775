"""Prometheus collectors of the inference service, scraped as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from mloop.data.contract import ColumnSpec
from mloop.serve.metrics import LATEST_FILE, ServeMetrics, prediction_buckets


def samples(metrics: ServeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def write_latest(folder: Path, data: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LATEST_FILE).write_text(json.dumps(data), encoding="utf-8")


def test_monitoring_results_are_read_at_scrape_time(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    assert not any(name.startswith(("mloop_feature_drift", "mloop_drift")) for name, _ in samples(metrics))

    write_latest(
        tmp_path,
        {
            "model_version": "3",
            "dataset_drift": False,
            "drift": [
                {"feature": "area", "statistic": "psi", "value": 0.1},
                {"feature": "area", "statistic": "psi", "value": 0.4},  # repeated: the last one counts
                {"feature": "zone", "statistic": "chi2", "value": "n/a"},  # not a number: skipped
                "garbage",
            ],
            "quality": {"rmse": 25000.0, "mae": None},
            "estimated_quality": {"rmse": 27000.0, "mae": "n/a"},
        },
    )
    found = samples(metrics)

    assert found[("mloop_feature_drift", (("feature", "area"), ("statistic", "psi")))] == 0.4
    assert ("mloop_feature_drift", (("feature", "zone"), ("statistic", "chi2"))) not in found
    assert found[("mloop_drift_detected", ())] == 0.0
    assert found[("mloop_model_quality", (("metric", "rmse"),))] == 25000.0
    assert ("mloop_model_quality", (("metric", "mae"),)) not in found
    assert found[("mloop_model_estimated_quality", (("metric", "rmse"),))] == 27000.0  # before labels
    assert ("mloop_model_estimated_quality", (("metric", "mae"),)) not in found


def test_the_data_quality_of_the_latest_window_is_exported_per_feature(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    assert not any(name.startswith("mloop_data_") for name, _ in samples(metrics))
    area = {"feature": "area", "null_rate": 0.25, "reference_null_rate": 0.05, "unseen": 0, "out_of_contract": 4}
    zone = {"feature": "zone", "null_rate": 0.0, "reference_null_rate": None, "unseen": 7, "out_of_contract": 7}
    coercions = {"coerced": 2, "coercion_failures": 1}
    features = [{**area, "out_of_contract": 99}, {**area, **coercions}, zone, "garbage"]  # the last "area" counts
    write_latest(tmp_path, {"data_quality": {"n_rows": 200, "n_issues": 2, "features": features}})
    found = samples(metrics)

    assert found[("mloop_data_null_rate", (("feature", "area"),))] == 0.25
    assert found[("mloop_data_reference_null_rate", (("feature", "area"),))] == 0.05
    assert ("mloop_data_reference_null_rate", (("feature", "zone"),)) not in found  # no reference: no sample
    assert found[("mloop_data_unseen_categories", (("feature", "zone"),))] == 7
    assert found[("mloop_data_out_of_contract", (("feature", "area"),))] == 4
    assert found[("mloop_data_coercions", (("feature", "area"), ("outcome", "coerced")))] == 2
    assert found[("mloop_data_coercions", (("feature", "area"), ("outcome", "failed")))] == 1
    assert found[("mloop_data_window_rows", ())] == 200 and found[("mloop_data_quality_issues", ())] == 2
    write_latest(tmp_path, {"data_quality": None})  # a window recorded before data-quality checks
    assert not any(name.startswith("mloop_data_") for name, _ in samples(metrics))


def test_an_unreadable_file_exports_nothing(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    (tmp_path / LATEST_FILE).write_text("[1, 2", encoding="utf-8")
    assert not any(name == "mloop_feature_drift" for name, _ in samples(metrics))
    write_latest(tmp_path, ["not", "an", "object"])
    assert not any(name == "mloop_drift_detected" for name, _ in samples(metrics))


def test_apps_have_separate_registries_and_the_model_gauge_follows_swaps(tmp_path: Path) -> None:
    first, second = ServeMetrics(tmp_path), ServeMetrics(tmp_path)
    first.requests.labels("/v1/predict", "200", "1").inc()
    first.set_model("1", "champion")
    first.set_model("2", "champion", previous="1")

    found = samples(first)
    assert found[("mloop_model_info", (("alias", "champion"), ("version", "2")))] == 1.0
    assert ("mloop_model_info", (("alias", "champion"), ("version", "1"))) not in found
    assert ("mloop_requests_total", (("endpoint", "/v1/predict"), ("model_version", "1"), ("status", "200"))) in found
    assert not any(name == "mloop_requests_total" for name, _ in samples(second))


def test_predictions_are_observed_by_task(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    metrics.observe_predictions(["a", "b", "a"], "classification")
    metrics.enable_prediction_histogram(prediction_buckets(ColumnSpec(dtype="float", min=0.0, max=100.0)))
    metrics.observe_predictions([10.0, 55.0, float("nan")], "regression")

    found = samples(metrics)
    assert found[("mloop_predicted_class_total", (("class", "a"),))] == 2.0
    assert found[("mloop_prediction_count", ())] == 2.0
    assert found[("mloop_prediction_bucket", (("le", "50.0"),))] == 1.0


def test_prediction_buckets_span_the_training_range() -> None:
    buckets = prediction_buckets(ColumnSpec(dtype="float", min=12789.0, max=755000.0))
    assert len(buckets) == 19 and buckets == sorted(buckets)
    assert 12789.0 < buckets[0] < buckets[-1] < 755000.0
    assert prediction_buckets(None)[0] == 0.01


def test_the_multivariate_drift_of_the_latest_window_is_exported_beside_its_thresholds(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    assert not any(name.startswith("mloop_multivariate_") for name, _ in samples(metrics))
    together = {
        "drifted": True,
        "reconstruction": {"error": 2.5, "threshold": 1.4, "drifted": True},
        "domain_classifier": {"auroc": None, "threshold": None, "drifted": False},  # too few rows to run it
    }
    write_latest(tmp_path, {"multivariate": together})
    found = samples(metrics)

    assert found[("mloop_multivariate_drift_detected", ())] == 1.0
    assert found[("mloop_multivariate_statistic", (("statistic", "reconstruction_error"),))] == 2.5
    assert found[("mloop_multivariate_threshold", (("statistic", "reconstruction_error"),))] == 1.4
    assert ("mloop_multivariate_statistic", (("statistic", "domain_auroc"),)) not in found
    write_latest(tmp_path, {"multivariate": {**together, "drifted": False, "reconstruction": "garbage"}})
    found = samples(metrics)
    assert found[("mloop_multivariate_drift_detected", ())] == 0.0
    assert not any(name == "mloop_multivariate_statistic" for name, _ in found)
