"""The shadow scorer compares the challenger's predictions with the champion's as it scores them, and the
server exports the agreement per challenger and champion version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mloop.data.predictions import PredictionRow
from mloop.serve.metrics import ServeMetrics
from mloop.serve.model_holder import Scored
from mloop.serve.shadow import ShadowScorer


@dataclass
class _Challenger:
    version: str
    task: str
    answers: list[Any]

    def score_records(self, records: list[dict[str, Any]]) -> Scored:
        return Scored(self.answers[: len(records)], None)


class _Writer:
    def __init__(self) -> None:
        self.rows: list[PredictionRow] = []

    def log_many(self, rows: list[PredictionRow]) -> None:
        self.rows.extend(rows)


def _samples(metrics: ServeMetrics, name: str) -> dict[tuple[str, str], float]:
    text = metrics.render().decode()
    return {
        (s.labels["version"], s.labels["champion"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def _scored(metrics: ServeMetrics, challenger: _Challenger, batches: list[tuple[list[Any], str]]) -> _Writer:
    writer = _Writer()
    scorer = ShadowScorer(1.0, lambda: writer, on_compared=metrics.observe_shadow, tolerance=0.05)  # type: ignore[arg-type, return-value]
    scorer.start()
    for served, champion in batches:
        records = [{"area": float(i)} for i in range(len(served))]
        scorer.offer(challenger, records, [f"r{i}" for i in range(len(served))], served, champion)  # type: ignore[arg-type]
    scorer.close()
    return writer


def test_regression_agreement_is_counted_per_version_pair(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    challenger = _Challenger("2", "regression", [100.0, 104.0, 120.0, 0.0])
    writer = _scored(metrics, challenger, [([100.0, 100.0, 100.0, 0.0], "1"), ([100.0, 108.0], "1")])

    assert [r.request_id for r in writer.rows] == ["r0:shadow", "r1:shadow", "r2:shadow", "r3:shadow"] + [
        "r0:shadow",
        "r1:shadow",
    ]
    # first batch: 100/100, 104/100 (4%), 120/100 (20%), 0/0 -> 3 agree; second: 100/100, 104/108 (3.7%) -> 2
    assert _samples(metrics, "mloop_shadow_compared_total") == {("2", "1"): 6.0}
    assert _samples(metrics, "mloop_shadow_agreed_total") == {("2", "1"): 5.0}
    assert _samples(metrics, "mloop_shadow_agreement") == {("2", "1"): pytest.approx(5 / 6)}


def test_classification_agreement_and_no_comparison_without_the_champion_answers(tmp_path: Path) -> None:
    metrics = ServeMetrics(tmp_path)
    challenger = _Challenger("5", "classification", ["yes", "no", "no"])
    _scored(metrics, challenger, [(["yes", "yes", "no"], "4")])
    scorer = ShadowScorer(1.0, _Writer, on_compared=metrics.observe_shadow)  # type: ignore[arg-type]
    scorer.start()
    scorer.offer(challenger, [{"a": 1}], ["x"])  # type: ignore[arg-type]  # no served answers: scored, not compared
    scorer.close()

    assert _samples(metrics, "mloop_shadow_agreement") == {("5", "4"): pytest.approx(2 / 3)}
    assert _samples(metrics, "mloop_shadow_compared_total") == {("5", "4"): 3.0}
