"""What mloop exports on /metrics, read from the real collectors of the inference server (``mloop serve``) and
of the stream consumer (``mloop stream``), and the metric and label names a PromQL expression refers to: the
Grafana and Prometheus checks compare the two."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mloop.serve.metrics import LATEST_FILE, ServeMetrics
from mloop.serve.stream.metrics import DEAD_LETTER, READ, WRITTEN, StreamMetrics

# Labels Prometheus itself attaches to every scraped series, and series it makes up.
TARGET_LABELS = {"job", "instance", "service", "le"}
PROMETHEUS_SERIES = {"up"}
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def exported_series(tmp_path: Path) -> dict[str, set[str]]:
    """Every sample name the server's and the stream consumer's registries render, with their label names,
    with all collectors filled."""
    metrics = ServeMetrics(tmp_path)
    latest = {
        "dataset_drift": True,
        "drift": [{"feature": "area", "statistic": "psi", "value": 0.3}],
        "quality": {"rmse": 1.0, "decay": 0.2},
        "estimated_quality": {"rmse": 1.1},
        "multivariate": {
            "drifted": True,
            "reconstruction": {"error": 2.5, "threshold": 1.4, "drifted": True},
            "domain_classifier": {"auroc": 0.7, "threshold": 0.62, "drifted": True},
        },
        "data_quality": {
            "n_rows": 200,
            "n_issues": 1,
            "features": [
                {
                    "feature": "area",
                    "null_rate": 0.1,
                    "reference_null_rate": 0.0,
                    "unseen": 0,
                    "out_of_contract": 3,
                    "coerced": 1,
                    "coercion_failures": 2,
                }
            ],
        },
    }
    (tmp_path / LATEST_FILE).write_text(json.dumps(latest), encoding="utf-8")
    metrics.enable_prediction_histogram([1.0, 2.0])
    metrics.observe_predictions([1.5], "regression")
    metrics.requests.labels("/v1/predict", "200", "1").inc()
    metrics.duration.labels("/v1/predict").observe(0.01)
    metrics.set_model("1", "champion")
    metrics.log_dropped.inc(0)
    series: dict[str, set[str]] = {}
    _add_samples(series, metrics.render().decode())
    _add_samples(series, _stream_exposition())
    return series


def _stream_exposition() -> str:
    """What a stream consumer's /metrics renders once it has scored a batch."""
    stream = StreamMetrics("redis://redis:6379/0/events")
    for outcome in (READ, WRITTEN, DEAD_LETTER):
        stream.count(outcome, 1)
    stream.lag.labels(stream.source).set(3)
    stream.batch_duration.labels(stream.source).observe(0.01)
    stream.batch_events.labels(stream.source).observe(3)
    stream.labels_attached.labels(stream.source, "attached").inc()
    stream.set_model("1", "champion", previous=None)
    stream.log_dropped.inc(0)
    return generate_latest(stream.registry).decode()


def _add_samples(series: dict[str, set[str]], exposition: str) -> None:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)


def metric_selectors(expr: str, exported: dict[str, set[str]]) -> list[tuple[str, set[str]]]:
    """``(metric, label names)`` of every selector naming an ``mloop_`` (or Prometheus) series."""
    found = []
    for name, matchers in _SELECTOR.findall(expr):
        if name.startswith("mloop_") or name in PROMETHEUS_SERIES:
            found.append((name, set(_LABEL.findall(matchers or ""))))
    return found


def unknown_references(expr: str, exported: dict[str, set[str]]) -> list[str]:
    """Metric names or label names in ``expr`` that neither the server nor the stream consumer exports; empty
    when all are."""
    problems = []
    for name, labels in metric_selectors(expr, exported):
        if name in PROMETHEUS_SERIES:
            continue
        if name not in exported:
            problems.append(f"metric {name}")
            continue
        extra = labels - exported[name] - TARGET_LABELS
        problems.extend(f"label {name}.{label}" for label in sorted(extra))
    return problems
