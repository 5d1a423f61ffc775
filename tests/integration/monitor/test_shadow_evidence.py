"""Shadow traffic as evidence, end to end: a real MLflow store, a real uvicorn server shadow-scoring a challenger
that really differs from the champion, the SQLite log and the PostgreSQL log.

The champion is a boosted model of 100 iterations, the challenger the same model stopped after 25: their
predictions differ measurably, and the challenger wins on the holdout but loses on live traffic (later sales).
The gate wants 150 shadow-scored requests and live quality no more than 5% worse: the challenger is refused
without the requests, then for its live quality (which only shadow evidence shows), and promoted under a
lenient 25%. From then on its monitoring windows hold only the requests it served, not the 160 it shadowed
while it was challenger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.cli import mloop, mloop_json
from tests.helpers.projects import configure, early_sales, train_champion, write_project
from tests.helpers.servers import run_server, wait_for
from tests.helpers.traffic import as_records, post
from tests.postgres_schema import fresh_schema

from mloop.core.gate import GateDecision
from mloop.core.metrics import regression_metrics
from mloop.core.shadow import ShadowEvidence
from mloop.data.contract import load_contract
from mloop.data.snapshot import latest_snapshot
from mloop.monitor.report import render_report
from mloop.monitor.runner import WindowResult, monitor, monitor_windows
from mloop.project import Project
from mloop.registry import audit, gate, versions
from mloop.registry.shadow import version_evidence
from mloop.registry.versions import CHALLENGER, CHAMPION
from mloop.retrain.controller import labelled_production_rows
from mloop.train.trainer import train

pytestmark = pytest.mark.integration

TRAIN_ROWS = 800
SHADOWED_FIRST = 100  # requests shadow-scored before the first `mloop promote` on evidence
SHADOWED_THEN = 60  # more, which make the 150 the gate asks for
SERVED_AFTER = 80  # requests the promoted challenger serves itself
MIN_REQUESTS = 150
MAX_QUALITY_LOSS = 0.05
TOLERANCE = 0.05


@dataclass
class Shadowed:
    """What happened to one project, read as it happened."""

    project: Project
    challenger: str
    refused_without_traffic: GateDecision
    cli_refusal: str
    refusal_record: dict[str, Any]
    evidence: ShadowEvidence  # after SHADOWED_FIRST requests
    metrics: dict[str, float]  # the server's shadow series then, by sample name
    models: list[dict[str, Any]]  # `mloop models --json` then
    served: dict[str, float]  # the champion's answer to each request, as the caller got it
    labels: dict[str, float]  # fed back per request id, while the challenger shadowed
    after_labels: dict[str, float]  # fed back for the requests the promoted challenger served
    shadow_rows: pd.DataFrame  # the challenger's shadow rows, read back from the log
    refused_on_quality: GateDecision
    promoted: GateDecision
    window: WindowResult
    windows: list[WindowResult]
    training_ids: list[str]
    report: str


def _shadow_metrics(client: httpx.Client, version: str, champion: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("mloop_shadow_") and sample.labels.get("version") == version:
                assert sample.labels["champion"] == champion
                found[sample.name] = sample.value
            elif sample.name == "mloop_shadow_scored_total":
                found[sample.name] = sample.value
    return found


def _send(
    client: httpx.Client, rows: pd.DataFrame, features: list[str], served: dict[str, float], labels: dict[str, float]
) -> str:
    """POST ``rows`` in batches of 50, feed their sale prices back; the version that answered the last batch."""
    version = ""
    for start in range(0, len(rows), 50):
        chunk = rows.iloc[start : start + 50]
        answer = post(client, "/v1/predict", as_records(chunk, features))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        version = str(body["model_version"])
        served.update(zip(body["request_ids"], map(float, body["predictions"]), strict=True))
        fed = [
            {"request_id": rid, "label": float(y)}
            for rid, y in zip(body["request_ids"], chunk["Sale_Price"], strict=True)
        ]
        labels.update((item["request_id"], item["label"]) for item in fed)
        assert client.post("/v1/feedback", json=fed).status_code == 200
    return version


def _scenario(root: Path, ames: pd.DataFrame, predictions_url: str | None) -> Shadowed:
    monitor_section: dict[str, Any] = {"window_size": 50}
    if predictions_url is not None:
        monitor_section["predictions_url"] = predictions_url
    project = write_project(
        root / "ames",
        early_sales(ames, TRAIN_ROWS),
        "ames-shadow",
        gate={"metric": "rmse", "shadow": {"min_requests": MIN_REQUESTS, "max_quality_loss": MAX_QUALITY_LOSS}},
        monitor=monitor_section,
    )
    train_champion(project)  # v1: the first version needs no evidence, it has no champion to shadow
    shorter = configure(project, "challenger.yaml", train={"params": {"max_iter": 25}})
    challenger = versions.register(project, train(shorter, latest_snapshot(project.snapshots_dir)).run_id).version
    lenient = configure(
        project, "lenient.yaml", gate={"shadow": {"min_requests": MIN_REQUESTS, "max_quality_loss": 0.25}}
    )

    refused = gate.promote(project, challenger)  # no traffic yet: refused, and made challenger
    assert versions.get_version(project, challenger).aliases == [CHALLENGER]

    features = load_contract(project.contract_path).features
    later = ames[ames["Year_Sold"] >= 2008].reset_index(drop=True)
    store = project.prediction_store()
    served: dict[str, float] = {}
    labels: dict[str, float] = {}
    with run_server(project, root, env={"MLOOP_SERVE__SHADOW_FRACTION": "1.0"}) as server, server.client() as http:
        assert _send(http, later.iloc[:SHADOWED_FIRST], features, served, labels) == "1"
        wait_for(lambda: store.count(model_version=challenger, shadow=True) == SHADOWED_FIRST, "the shadow rows")
        metrics = wait_for(
            lambda: (
                found
                if (found := _shadow_metrics(http, challenger, "1")).get("mloop_shadow_compared_total")
                == SHADOWED_FIRST
                else None
            ),
            "the shadow comparisons on /metrics",
        )
        evidence = version_evidence(project, challenger, "1")
        models = mloop_json("models", "--json", project=project)
        cli = mloop("promote", challenger, project=project)
        assert cli.returncode == 0, cli.stderr
        record = audit.read(project.audit_log)[-1]

        _send(http, later.iloc[SHADOWED_FIRST : SHADOWED_FIRST + SHADOWED_THEN], features, served, labels)
        shadowed = SHADOWED_FIRST + SHADOWED_THEN
        wait_for(lambda: store.count(model_version=challenger, shadow=True) == shadowed, "the shadow rows")
        shadow_rows = store.read(model_version=challenger, shadow=True)
        refused_on_quality = gate.promote(project, challenger)
        promoted = gate.promote(lenient, challenger)
        assert promoted.promote, promoted.reason

        after = later.iloc[shadowed : shadowed + SERVED_AFTER]
        wait_for(
            lambda: http.get("/v1/model").json().get("version") == challenger, "the server to serve the new champion"
        )
        after_labels: dict[str, float] = {}
        assert _send(http, after, features, {}, after_labels) == challenger
        wait_for(lambda: store.count(model_version=challenger) == SERVED_AFTER, "the new champion's rows")

    return Shadowed(
        project=project,
        challenger=challenger,
        refused_without_traffic=refused,
        cli_refusal=cli.stdout,
        refusal_record=record,
        evidence=evidence,
        metrics=metrics,
        models=models,
        served=served,
        labels=labels,
        after_labels=after_labels,
        shadow_rows=shadow_rows,
        refused_on_quality=refused_on_quality,
        promoted=promoted,
        window=monitor(project, write=False),
        windows=monitor_windows(project),
        training_ids=labelled_production_rows(project, features).index.tolist(),
        report=render_report(project),
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shadowed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame
) -> Iterator[Shadowed]:
    root = tmp_path_factory.mktemp(f"shadow-{request.param}")
    if request.param == "sqlite":
        yield _scenario(root, ames, None)
        return
    with fresh_schema() as (url, _):
        yield _scenario(root, ames, url)


def _check(decision: GateDecision | dict[str, Any], name: str) -> dict[str, Any]:
    data = decision.to_dict() if isinstance(decision, GateDecision) else decision
    [found] = [c for c in data["checks"] if c["name"] == name]
    return dict(found)


def _first(shadowed: Shadowed, n: int = SHADOWED_FIRST) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` pairs, computed directly: ids, champion answers, challenger rows, labels."""
    rows = shadowed.shadow_rows.iloc[:n]
    ids = [rid.removesuffix(":shadow") for rid in rows["request_id"]]
    champion = np.array([shadowed.served[rid] for rid in ids])
    challenger = rows["prediction"].to_numpy(dtype=float)
    labels = np.array([shadowed.labels[rid] for rid in ids])
    return ids, champion, challenger, labels


def test_the_challenger_differs_measurably_and_the_evidence_says_by_how_much(shadowed: Shadowed) -> None:
    _, champion, challenger, labels = _first(shadowed)
    evidence = shadowed.evidence
    relative = np.abs(challenger - champion) / np.abs(champion)

    assert evidence.requests == SHADOWED_FIRST and evidence.labelled == SHADOWED_FIRST
    assert 0 < evidence.agreement < 1  # type: ignore[operator]
    assert evidence.agreed == int((relative <= TOLERANCE).sum())
    assert evidence.mean_abs_difference == pytest.approx(np.mean(np.abs(challenger - champion)))
    assert evidence.mean_relative_difference == pytest.approx(np.mean(relative))
    assert evidence.mean_relative_difference > 0.01  # type: ignore[operator]
    assert evidence.champion_quality == pytest.approx(regression_metrics(labels, champion))
    assert evidence.challenger_quality == pytest.approx(regression_metrics(labels, challenger))
    assert evidence.challenger_quality["rmse"] > evidence.champion_quality["rmse"]  # worse live, better on the holdout
    assert {"psi", "ks", "ks_pvalue"} <= set(evidence.drift)


def test_the_server_exports_the_same_agreement_it_computed_online(shadowed: Shadowed) -> None:
    metrics = shadowed.metrics
    assert metrics["mloop_shadow_scored_total"] == SHADOWED_FIRST
    assert metrics["mloop_shadow_compared_total"] == SHADOWED_FIRST
    assert metrics["mloop_shadow_agreed_total"] == shadowed.evidence.agreed
    assert metrics["mloop_shadow_agreement"] == pytest.approx(shadowed.evidence.agreement)


def test_mloop_models_shows_the_challengers_evidence(shadowed: Shadowed) -> None:
    by_version = {entry["version"]: entry for entry in shadowed.models}
    shadow = by_version[shadowed.challenger]["shadow"]
    assert CHALLENGER in by_version[shadowed.challenger]["aliases"] and by_version["1"]["shadow"] is None
    assert shadow["requests"] == SHADOWED_FIRST and shadow["labelled"] == SHADOWED_FIRST
    assert shadow["agreement"] == pytest.approx(shadowed.evidence.agreement)
    assert shadow["challenger_quality"]["rmse"] == pytest.approx(shadowed.evidence.challenger_quality["rmse"])


def test_promote_refuses_without_enough_evidence_naming_the_figures_and_audits_it(shadowed: Shadowed) -> None:
    empty = shadowed.refused_without_traffic
    assert not empty.promote and {"shadow.requests", "shadow.quality"} <= set(empty.failed)
    assert "only 0 shadow-scored requests against champion v1, gate.shadow.min_requests=150" in empty.reason
    assert "beats_champion" not in empty.failed  # only the evidence was missing

    agreement = f"{shadowed.evidence.agreement:.1%}"
    assert "not promoted" in shadowed.cli_refusal
    assert "only 100 shadow-scored requests against champion v1, gate.shadow.min_requests=150" in " ".join(
        shadowed.cli_refusal.split()
    )
    assert f"agreement so far {agreement}" in " ".join(shadowed.cli_refusal.split())
    record = shadowed.refusal_record
    assert (record["event"], record["version"], record["forced"]) == ("reject", shadowed.challenger, False)
    assert record["gate"]["failed"] == ["shadow.requests", "shadow.quality"]
    assert _check(record["gate"], "shadow.requests")["values"]["requests"] == SHADOWED_FIRST
    _, champion, challenger, labels = _first(shadowed)
    theirs, mine = _rmse(labels, champion), _rmse(labels, challenger)
    quality = _check(record["gate"], "shadow.quality")
    assert quality["values"]["labelled"] == SHADOWED_FIRST
    assert quality["values"]["champion"] == pytest.approx(theirs) and quality["values"]["challenger"] == pytest.approx(
        mine
    )
    assert quality["values"]["loss"] == pytest.approx((mine - theirs) / theirs) and (mine - theirs) / theirs > 0.05


def _rmse(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(np.sqrt(np.mean((labels - predictions) ** 2)))


def test_enough_requests_but_worse_live_quality_is_refused_though_the_holdout_says_better(shadowed: Shadowed) -> None:
    decision = shadowed.refused_on_quality
    assert not decision.promote and decision.failed == ["shadow.quality"]
    assert _check(decision, "beats_champion")["passed"]  # on the holdout the challenger wins
    _, champion, challenger, labels = _first(shadowed, SHADOWED_FIRST + SHADOWED_THEN)
    loss = (_rmse(labels, challenger) - _rmse(labels, champion)) / _rmse(labels, champion)
    quality = _check(decision, "shadow.quality")
    assert quality["values"]["loss"] == pytest.approx(loss)
    assert f"({loss:.1%} worse), over gate.shadow.max_quality_loss=5.0%" in quality["detail"]
    assert f"on the same {SHADOWED_FIRST + SHADOWED_THEN} labelled requests" in quality["detail"]
    entry = [e for e in audit.read(shadowed.project.audit_log) if e["event"] == "reject"][-1]
    assert entry["gate"]["failed"] == ["shadow.quality"] and entry["version"] == shadowed.challenger


def test_with_enough_evidence_the_challenger_is_promoted(shadowed: Shadowed) -> None:
    decision = shadowed.promoted
    requests = _check(decision, "shadow.requests")
    assert requests["passed"] and requests["values"]["requests"] == SHADOWED_FIRST + SHADOWED_THEN
    assert 0.05 < _check(decision, "shadow.quality")["values"]["loss"] < 0.25  # within the lenient bound
    entry = audit.read(shadowed.project.audit_log)[-1]
    assert (entry["event"], entry["version"], entry["previous"]) == ("promote", shadowed.challenger, "1")
    assert versions.alias_version(shadowed.project, CHAMPION).version == shadowed.challenger  # type: ignore[union-attr]


def test_the_promoted_challengers_windows_hold_only_the_requests_it_served(shadowed: Shadowed) -> None:
    shadowed_count = len(shadowed.shadow_rows)
    assert shadowed_count == SHADOWED_FIRST + SHADOWED_THEN  # still in the log, under the new champion's version
    assert shadowed.window.version == shadowed.challenger
    assert shadowed.window.n_rows == 50 and shadowed.window.index == (SERVED_AFTER - 1) // 50
    assert sum(w.n_rows for w in shadowed.windows) == SERVED_AFTER
    assert shadowed.windows[0].start_ts > str(shadowed.shadow_rows["ts"].max())  # after every shadow row
    assert not [rid for rid in shadowed.training_ids if rid.endswith(":shadow")]
    assert sorted(shadowed.training_ids) == sorted([*shadowed.labels, *shadowed.after_labels])  # once each


def test_the_report_shows_the_evidence_the_champion_was_promoted_on(shadowed: Shadowed) -> None:
    report = shadowed.report
    assert "<h2>Shadow evidence</h2>" in report
    section = report.split("<h2>Shadow evidence</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<td>{shadowed.challenger}</td>" in section
    assert "before promotion" in section and f"<td>{SHADOWED_FIRST + SHADOWED_THEN}</td>" in section
