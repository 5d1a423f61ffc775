"""Prometheus metrics of one app, on its own ``CollectorRegistry`` so several apps can live in a process.

With ``--workers N`` every worker process has its own registry, so counters are per worker: a scrape
through the service reaches one worker at a time. Scrape workers individually (one port each, or the
Kubernetes pods of the Helm chart) or run one worker per process when exact totals matter.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from mloop.data.contract import ColumnSpec

LATEST_FILE = "latest.json"
# Seconds; single rows take a few milliseconds, batches of thousands up to seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREDICTION_BUCKETS = 20


def prediction_buckets(target: ColumnSpec | None) -> list[float]:
    """Histogram bounds spread over the target's range in training, so the histogram shows its shape."""
    if target is None or target.min is None or target.max is None or not target.max > target.min:
        return [float(10**k) for k in range(-2, 10)]
    low, high = target.min, target.max
    step = (high - low) / PREDICTION_BUCKETS
    digits = 2 - math.floor(math.log10(step))  # three significant digits of the step (may be negative)
    return sorted({round(low + i * step, digits) for i in range(1, PREDICTION_BUCKETS)})


class MonitoringCollector:
    """Exports the latest ``mloop monitor`` results at scrape time; no file or a broken one exports nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return []
        return list(self._families(data)) if isinstance(data, dict) else []

    def _families(self, data: dict[str, Any] | None = None) -> Iterator[Metric]:
        drift = GaugeMetricFamily(
            "mloop_feature_drift",
            "Drift statistic of a feature in the latest monitoring window vs the training reference.",
            labels=["feature", "statistic"],
        )
        detected = GaugeMetricFamily("mloop_drift_detected", "1 if the latest monitoring window drifted, else 0.")
        quality = GaugeMetricFamily(
            "mloop_model_quality", "Model quality on the labelled predictions of the latest window.", labels=["metric"]
        )
        estimated = GaugeMetricFamily(
            "mloop_model_estimated_quality",
            "Model quality of the latest window estimated before labels (the version's quality estimator).",
            labels=["metric"],
        )
        if data is not None:
            for labels, value in _drift_values(data.get("drift")).items():
                drift.add_metric(list(labels), value)
            if "dataset_drift" in data:
                detected.add_metric([], 1.0 if data["dataset_drift"] else 0.0)
            for family, key in ((quality, "quality"), (estimated, "estimated_quality")):
                values = data.get(key)
                for metric, raw in values.items() if isinstance(values, dict) else []:
                    number = _number(raw)
                    if number is not None:
                        family.add_metric([str(metric)], number)
        yield from (drift, detected, quality, estimated)
        yield from _data_quality_families(data.get("data_quality") if data is not None else None)
        yield from _multivariate_families(data.get("multivariate") if data is not None else None)


# statistic label -> the key of its section in a multivariate entry (mloop.data.multivariate.MultivariateDrift)
_MULTIVARIATE = (("reconstruction_error", "reconstruction", "error"), ("domain_auroc", "domain_classifier", "auroc"))


def _multivariate_families(report: Any) -> Iterator[Metric]:
    """The ``multivariate`` section of a monitoring result as gauges: each statistic beside its threshold."""
    detected = GaugeMetricFamily(
        "mloop_multivariate_drift_detected",
        "1 if the latest window's features drifted together (PCA reconstruction error or domain classifier), else 0.",
    )
    value = GaugeMetricFamily(
        "mloop_multivariate_statistic",
        "Multivariate drift statistic of the latest window: median PCA reconstruction error, domain classifier AUROC.",
        labels=["statistic"],
    )
    threshold = GaugeMetricFamily(
        "mloop_multivariate_threshold",
        "The statistic's alarm threshold for the window's size, calibrated on the training reference.",
        labels=["statistic"],
    )
    if isinstance(report, dict):
        if "drifted" in report:
            detected.add_metric([], 1.0 if report["drifted"] else 0.0)
        for statistic, section, key in _MULTIVARIATE:
            entry = report.get(section)
            if not isinstance(entry, dict):
                continue
            for family, field in ((value, key), (threshold, "threshold")):
                number = _number(entry.get(field))
                if number is not None:
                    family.add_metric([statistic], number)
    yield from (detected, value, threshold)


# Per feature of the latest window: (metric name, help, the key of a data_quality feature entry).
_DATA_QUALITY = (
    (
        "mloop_data_null_rate",
        "Share of the latest window's rows in which the feature was missing as sent.",
        "null_rate",
    ),
    (
        "mloop_data_reference_null_rate",
        "Share of the training reference's rows in which the feature was missing.",
        "reference_null_rate",
    ),
    (
        "mloop_data_unseen_categories",
        "Rows of the latest window whose category of the feature the training data never had.",
        "unseen",
    ),
    (
        "mloop_data_out_of_contract",
        "Rows of the latest window whose value of the feature is outside the contract's range or category set.",
        "out_of_contract",
    ),
)


def _data_quality_families(report: Any) -> Iterator[Metric]:
    """The ``data_quality`` section of a monitoring result (mloop.monitor.data_quality) as gauges."""
    per_feature = {name: GaugeMetricFamily(name, text, labels=["feature"]) for name, text, _ in _DATA_QUALITY}
    coercions = GaugeMetricFamily(
        "mloop_data_coercions",
        "Values of the feature in the latest window sent as another type: converted (outcome=coerced) or "
        "unreadable, seen by the model as missing (outcome=failed).",
        labels=["feature", "outcome"],
    )
    rows = GaugeMetricFamily("mloop_data_window_rows", "Rows of the latest window the data-quality figures are of.")
    issues = GaugeMetricFamily(
        "mloop_data_quality_issues", "Features of the latest window with a data-quality issue (monitor.data_quality)."
    )
    if isinstance(report, dict):
        for family, value in ((rows, report.get("n_rows")), (issues, report.get("n_issues"))):
            number = _number(value)
            if number is not None:
                family.add_metric([], number)
        features = report.get("features")
        # A repeated feature keeps its last entry, as a scrape allows one sample per feature.
        latest = (
            {str(f.get("feature")): f for f in features if isinstance(f, dict)} if isinstance(features, list) else {}
        )
        for feature, item in latest.items():
            for name, _, key in _DATA_QUALITY:
                number = _number(item.get(key))
                if number is not None:
                    per_feature[name].add_metric([feature], number)
            for outcome, key in (("coerced", "coerced"), ("failed", "coercion_failures")):
                number = _number(item.get(key))
                if number is not None:
                    coercions.add_metric([feature, outcome], number)
    yield from (*per_feature.values(), coercions, rows, issues)


def _drift_values(items: Any) -> dict[tuple[str, str], float]:
    """(feature, statistic) → value; a repeated pair keeps its last value, as a scrape allows one."""
    values: dict[tuple[str, str], float] = {}
    for item in items if isinstance(items, list) else []:
        value = _number(item.get("value")) if isinstance(item, dict) else None
        if value is not None:
            values[(str(item.get("feature")), str(item.get("statistic")))] = value
    return values


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class ServeMetrics:
    """The collectors the inference service updates, and the text it answers ``/metrics`` with."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, monitor_dir: Path) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mloop_requests",
            "HTTP requests by endpoint, status code and the model version that was loaded.",
            ["endpoint", "status", "model_version"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mloop_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.predicted_class = Counter(
            "mloop_predicted_class",
            "Predictions by predicted class (classification).",
            ["class"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mloop_model_info",
            "1 for the model version loaded under an alias.",
            ["version", "alias"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "mloop_prediction_log_dropped",
            "Prediction log rows dropped because the writer could not keep up; must stay 0.",
            registry=self.registry,
        )
        self.fast_path = Gauge(
            "mloop_fast_path",
            "1 if a version is scored by the verified compiled pipeline, 0 if it fell back to the plain pipeline.",
            ["version"],
            registry=self.registry,
        )
        self.log_spilled = Counter(
            "mloop_prediction_log_spilled",
            "Prediction log rows written to the local spill file because the store failed.",
            registry=self.registry,
        )
        self.log_replayed = Counter(
            "mloop_prediction_log_replayed",
            "Spilled prediction log rows written back to the store once it took writes again.",
            registry=self.registry,
        )
        self.model_refused = Counter(
            "mloop_model_refused",
            "Model versions that failed to load or verify and were not served (the previous one kept serving).",
            ["version"],
            registry=self.registry,
        )
        self.shadow_scored = Counter(
            "mloop_shadow_scored", "Records the challenger scored in shadow mode.", registry=self.registry
        )
        self.shadow_skipped = Counter(
            "mloop_shadow_skipped",
            "Records not shadow-scored because the challenger was behind (the caller never waits).",
            registry=self.registry,
        )
        self.shadow_compared = Counter(
            "mloop_shadow_compared",
            "Shadow-scored records compared with the champion's answer, by challenger and champion version.",
            ["version", "champion"],
            registry=self.registry,
        )
        self.shadow_agreed = Counter(
            "mloop_shadow_agreed",
            "Shadow-scored records on which the challenger agreed with the champion (same class; regression: "
            "within gate.shadow.tolerance).",
            ["version", "champion"],
            registry=self.registry,
        )
        self.shadow_agreement = Gauge(
            "mloop_shadow_agreement",
            "Share of the challenger's shadow predictions that agreed with the champion's, since this process started.",
            ["version", "champion"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "mloop_micro_batch_rows",
            "Records per micro-batch: concurrent /v1/predict requests scored in one call of the model.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.batch_wait = Histogram(
            "mloop_micro_batch_wait_seconds",
            "How long the oldest request of a micro-batch waited for others before scoring began.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self._shadow_tally: dict[tuple[str, str], list[int]] = {}  # (compared, agreed) per version pair
        self._shadow_lock = threading.Lock()
        self.prediction: Histogram | None = None
        self.registry.register(MonitoringCollector(monitor_dir / LATEST_FILE))

    def enable_prediction_histogram(self, buckets: Sequence[float]) -> None:
        """Create ``mloop_prediction`` once, with buckets from the first regression model loaded."""
        if self.prediction is None:
            self.prediction = Histogram(
                "mloop_prediction", "Predicted values (regression).", buckets=buckets, registry=self.registry
            )

    def observe_shadow(self, version: str, champion: str, compared: int, agreed: int) -> None:
        """Count ``compared`` shadow predictions of challenger ``version``, ``agreed`` of which agreed."""
        if compared <= 0:
            return
        with self._shadow_lock:
            tally = self._shadow_tally.setdefault((version, champion), [0, 0])
            tally[0] += compared
            tally[1] += agreed
            share = tally[1] / tally[0]
        self.shadow_compared.labels(version, champion).inc(compared)
        self.shadow_agreed.labels(version, champion).inc(agreed)
        self.shadow_agreement.labels(version, champion).set(share)

    def observe_batch(self, rows: int, wait_seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.batch_wait.observe(wait_seconds)

    def observe_predictions(self, values: Sequence[Any], task: str) -> None:
        if task == "classification":
            for value in values:
                self.predicted_class.labels(str(value)).inc()
        elif self.prediction is not None:
            for value in values:
                number = float(value)
                if not math.isnan(number):
                    self.prediction.observe(number)

    def set_model(self, version: str | None, alias: str, previous: str | None = None) -> None:
        if previous is not None and previous != version:
            try:
                self.model_info.remove(previous, alias)
            except KeyError:
                pass  # never exported: nothing to remove
        if version is not None:
            self.model_info.labels(version, alias).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["LATEST_FILE", "MonitoringCollector", "ServeMetrics", "prediction_buckets"]
