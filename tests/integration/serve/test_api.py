"""The inference API against a real uvicorn server, a real MLflow registry and the real prediction log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.projects import MAX_BATCH, train_version, write_project
from tests.helpers.servers import run_server, wait_for
from tests.helpers.traffic import as_records, post

from mloop.data.contract import coerce_frame, load_contract, save_contract
from mloop.data.predictions import PredictionStore
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import gate, versions
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, alias_version, load_model

from .conftest import TRAIN_ROWS, expected

pytestmark = pytest.mark.integration

# ----------------------------------------------------------------------------------- predict


def test_single_prediction_equals_the_pipeline(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    _, contract, version = champion
    record = as_records(csv_rows.head(1), contract)[0]
    assert record["Mas_Vnr_Type"] is None

    response = post(client, "/v1/predict", record)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"prediction", "request_id", "model_version"}
    assert body["model_version"] == version
    assert uuid.UUID(body["request_id"]).version == 7  # time-ordered: the log's index grows at its end
    assert body["prediction"] == pytest.approx(expected(champion, csv_rows.head(1))[0], rel=1e-12)


def test_batch_predictions_equal_the_pipeline_in_order(
    client: httpx.Client, champion: Any, csv_rows: pd.DataFrame
) -> None:
    _, contract, version = champion
    response = post(client, "/v1/predict", as_records(csv_rows, contract))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"predictions", "request_ids", "model_version"}
    assert body["model_version"] == version
    assert body["predictions"] == pytest.approx(expected(champion, csv_rows).tolist(), rel=1e-12)
    assert len({uuid.UUID(i) for i in body["request_ids"]}) == len(csv_rows)


def test_every_record_is_logged_with_its_request_id(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    _, contract, version = champion
    records = as_records(csv_rows.head(3), contract)
    body = post(client, "/v1/predict", records).json()
    store = PredictionStore(project.predictions_db)

    def logged() -> pd.DataFrame | None:
        rows = store.read()
        rows = rows[rows["request_id"].isin(body["request_ids"])]
        return rows if len(rows) == 3 else None

    rows = wait_for(logged, "the predictions to reach the SQLite log").set_index("request_id")
    for request_id, record, prediction in zip(body["request_ids"], records, body["predictions"], strict=True):
        row = rows.loc[request_id]
        assert row["model_version"] == version
        assert row["prediction"] == pytest.approx(prediction)
        assert row["latency_ms"] > 0
        assert pd.Timestamp(row["ts"]).tz is not None
        assert pd.isna(row["Mas_Vnr_Type"]) and row["Gr_Liv_Area"] == record["Gr_Liv_Area"]
        assert row["Neighborhood"] == record["Neighborhood"]
        assert row["label"] is None


# ---------------------------------------------------------------------------------- feedback


def test_feedback_attaches_labels(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    _, contract, _ = champion
    first = post(client, "/v1/predict", as_records(csv_rows.head(1), contract)[0]).json()["request_id"]
    batch = post(client, "/v1/predict", as_records(csv_rows.head(2), contract)).json()["request_ids"]

    # Sent straight after the predictions: the server flushes its log writer before attaching.
    single = post(client, "/v1/feedback", {"request_id": first, "label": 181500})
    many = post(client, "/v1/feedback", [{"request_id": i, "label": 200000.5} for i in batch])

    assert (single.status_code, single.json()) == (200, {"attached": 1})
    assert (many.status_code, many.json()) == (200, {"attached": 2})
    labelled = PredictionStore(project.predictions_db).read(labelled_only=True).set_index("request_id")
    assert labelled.loc[first, "label"] == 181500
    assert labelled.loc[batch, "label"].tolist() == [200000.5, 200000.5]
    assert labelled.loc[first, "label_ts"] is not None


def test_feedback_for_an_unknown_request_is_404_and_attaches_nothing(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    _, contract, _ = champion
    known = post(client, "/v1/predict", as_records(csv_rows.head(1), contract)[0]).json()["request_id"]
    unknown = str(uuid.uuid4())

    response = post(
        client, "/v1/feedback", [{"request_id": known, "label": 1.0}, {"request_id": unknown, "label": 2.0}]
    )

    assert response.status_code == 404
    assert unknown in response.json()["detail"] and known not in response.json()["detail"]
    row = PredictionStore(project.predictions_db).read().set_index("request_id").loc[known]
    assert row["label"] is None


def test_feedback_without_a_label_is_422(client: httpx.Client) -> None:
    response = post(client, "/v1/feedback", {"request_id": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "label"]


# -------------------------------------------------------------------------------- bad input


def _one_record(champion: Any, csv_rows: pd.DataFrame) -> dict[str, Any]:
    return as_records(csv_rows.head(1), champion[1])[0]


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        (lambda r: r.pop("Gr_Liv_Area"), "Gr_Liv_Area", "missing"),
        (lambda r: r.update(Not_A_Feature=1), "Not_A_Feature", "extra_forbidden"),
        (lambda r: r.update(Gr_Liv_Area="big"), "Gr_Liv_Area", "number_type"),
        (lambda r: r.update(Lot_Area=1.5), "Lot_Area", "int_from_float"),
        (lambda r: r.update(Neighborhood=None), "Neighborhood", "string_type"),
    ],
    ids=["missing", "extra", "string-for-number", "fraction-for-integer", "null-for-required"],
)
def test_invalid_record_is_422_naming_the_field(
    client: httpx.Client,
    champion: Any,
    csv_rows: pd.DataFrame,
    change: Callable[[dict[str, Any]], Any],
    field: str,
    kind: str,
) -> None:
    record = _one_record(champion, csv_rows)
    change(record)

    response = post(client, "/v1/predict", record)

    assert response.status_code == 422
    assert response.json() == {"detail": [Subset(loc=["body", field], type=kind)]}


class Subset(dict[str, Any]):
    """Equal to any dict holding at least these items."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and all(other.get(k) == v for k, v in self.items())

    __hash__ = None


def test_invalid_record_in_a_batch_is_named_by_index(
    client: httpx.Client, champion: Any, csv_rows: pd.DataFrame
) -> None:
    records = as_records(csv_rows.head(3), champion[1])
    records[2]["Year_Built"] = "old"

    response = post(client, "/v1/predict", records)

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", 2, "Year_Built"]]


def test_integral_float_is_accepted_for_an_integer_field(
    client: httpx.Client, champion: Any, csv_rows: pd.DataFrame
) -> None:
    record = _one_record(champion, csv_rows)
    plain = post(client, "/v1/predict", record).json()["prediction"]
    record["Lot_Area"] = float(record["Lot_Area"])
    assert post(client, "/v1/predict", record).json()["prediction"] == plain


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"{not json", "json_invalid"), (b"", "json_invalid"), (b"42", "model_type"), (b"[]", "too_short")],
    ids=["malformed", "empty-body", "number", "empty-batch"],
)
def test_a_body_that_is_not_records_is_422(client: httpx.Client, body: bytes, kind: str) -> None:
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == kind


def test_oversized_batch_is_413(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    records = _one_record(champion, csv_rows)
    response = post(client, "/v1/predict", [records] * (MAX_BATCH + 1))
    assert response.status_code == 413
    assert "max_batch_size" in response.json()["detail"]


# ---------------------------------------------------------------------------- model, ops, docs


def test_model_describes_the_champion(client: httpx.Client, champion: Any) -> None:
    _, contract, version = champion
    body = client.get("/v1/model").json()
    assert (body["version"], body["alias"], body["task"], body["name"]) == (
        version,
        "champion",
        "regression",
        "ames-test",
    )
    assert body["metrics"]["rmse"] > 0 and len(body["run_id"]) == 32
    assert [f["name"] for f in body["features"]] == contract.features


def test_health_and_ready(client: httpx.Client, champion: Any) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "model_version": champion[2]}


def test_docs_show_the_contract_fields(client: httpx.Client, project: Project) -> None:
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["PredictRecord"]
    assert record["properties"]["Gr_Liv_Area"]["type"] == "integer"
    assert "Gr_Liv_Area" in record["required"] and "Mas_Vnr_Type" not in record["required"]
    assert "BrkFace" in record["properties"]["Mas_Vnr_Type"]["description"]
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"][1]["type"] == "array" and body["anyOf"][1]["minItems"] == 1
    assert body["anyOf"][1]["maxItems"] == project.config.serve.max_batch_size
    assert set(schema["paths"]["/v1/predict"]["post"]["responses"]) >= {"200", "401", "413", "422", "503"}
    assert client.get("/docs").status_code == 200


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_and_export_monitoring(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    version = champion[2]
    assert post(client, "/v1/predict", _one_record(champion, csv_rows)).status_code == 200
    latest = {
        "model_version": version,
        "ts": "2026-01-01T00:00:00+00:00",
        "n_rows": 200,
        "dataset_drift": True,
        "drift": [
            {"feature": "Gr_Liv_Area", "statistic": "psi", "value": 0.31, "drifted": True},
            {"feature": "Neighborhood", "statistic": "chi2", "value": 12.5, "drifted": False},
        ],
        "quality": {"rmse": 25000.0, "mae": 17000.0},
    }
    (project.monitor_dir / "latest.json").write_text(json.dumps(latest), encoding="utf-8")

    response = client.get("/metrics")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    requests = samples[
        ("mloop_requests_total", (("endpoint", "/v1/predict"), ("model_version", version), ("status", "200")))
    ]
    assert requests >= 1
    assert samples[("mloop_feature_drift", (("feature", "Gr_Liv_Area"), ("statistic", "psi")))] == 0.31
    assert samples[("mloop_feature_drift", (("feature", "Neighborhood"), ("statistic", "chi2")))] == 12.5
    assert samples[("mloop_drift_detected", ())] == 1.0
    assert samples[("mloop_model_quality", (("metric", "rmse"),))] == 25000.0
    assert samples[("mloop_model_info", (("alias", "champion"), ("version", version)))] == 1.0
    assert samples[("mloop_prediction_log_dropped_total", ())] == 0.0
    assert samples[("mloop_prediction_count", ())] >= 1
    assert ("mloop_request_duration_seconds_count", (("endpoint", "/v1/predict"),)) in samples


def test_a_broken_monitoring_file_exports_nothing(client: httpx.Client, project: Project) -> None:
    (project.monitor_dir / "latest.json").write_text("{half", encoding="utf-8")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert not any(name == "mloop_feature_drift" for name, _ in _samples(response.text))


# ---------------------------------------------------------------------------------- no model


def test_without_a_champion_the_server_starts_but_is_not_ready(
    tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame
) -> None:
    tmp = tmp_path_factory.mktemp("empty")
    empty = write_project(tmp / "project", train_frame, "ames-empty")
    with run_server(empty, tmp, ready_status=503) as srv, srv.client() as http:
        assert http.get("/health").status_code == 200
        ready = http.get("/ready")
        assert ready.status_code == 503 and "champion" in ready.json()["detail"]
        predict = post(http, "/v1/predict", {"Gr_Liv_Area": 1000})
        assert predict.status_code == 503 and "no model is loaded" in predict.json()["detail"]
        assert predict.headers["retry-after"] == "1"
        assert http.get("/v1/model").status_code == 503
        assert http.get("/metrics").status_code == 200


# -------------------------------------------------------------------------------- hot reload


def _served_version(http: httpx.Client, version: str) -> bool:
    response = http.get("/v1/model")
    return response.status_code == 200 and response.json()["version"] == version


def test_a_new_champion_is_served_without_a_restart(
    tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame, train_frame: pd.DataFrame
) -> None:
    tmp = tmp_path_factory.mktemp("reload")
    project = write_project(tmp / "project", train_frame, "ames-reload")
    stages.run(project)
    newer = ames[ames["Year_Sold"] <= 2007].iloc[TRAIN_ROWS:]
    newer.to_csv(tmp / "newer.csv", index=False)
    rows = pd.read_csv(tmp / "newer.csv").head(4)

    with run_server(project, tmp) as srv, srv.client() as http:
        assert _served_version(http, "1")

        # A version on other rows, force-promoted: the reloader picks it up.
        second = train_version(project, tmp / "newer.csv")
        gate.promote(project, second.version, force=True, reason="test")
        wait_for(lambda: _served_version(http, second.version), f"version {second.version} to be served")
        contract = version_contract(project, second)
        body = post(http, "/v1/predict", as_records(rows, contract)).json()
        assert body["model_version"] == second.version
        want = load_model(project, second.version).predict(coerce_frame(rows, contract))
        assert body["predictions"] == pytest.approx(np.asarray(want).tolist(), rel=1e-12)

        # A version with another input schema: requests are checked against it at once.
        edited = load_contract(project.contract_path)
        edited.columns["Misc_Feature"].role = "ignored"
        save_contract(edited, project.contract_path)
        third = train_version(project, tmp / "newer.csv")
        versions.set_alias(project, third.version, CHAMPION)
        wait_for(lambda: _served_version(http, third.version), f"version {third.version} to be served")
        record = as_records(rows.head(1), contract)[0]
        rejected = post(http, "/v1/predict", record)
        assert rejected.status_code == 422
        assert [e["loc"] for e in rejected.json()["detail"]] == [["body", "Misc_Feature"]]
        record.pop("Misc_Feature")
        accepted = post(http, "/v1/predict", record)
        assert accepted.status_code == 200 and accepted.json()["model_version"] == third.version


# ----------------------------------------------------------------------------- classification


def test_classification_answers_classes_and_probabilities(
    tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame
) -> None:
    tmp = tmp_path_factory.mktemp("classify")
    project = write_project(tmp / "project", train_frame, "ames-air", task="classification", target="Central_Air")
    stages.run(project)
    info = alias_version(project, CHAMPION)
    assert info is not None
    pipeline, contract = load_model(project, info.version), version_contract(project, info)
    rows = pd.read_csv(project.root / "train.csv").head(5)

    with run_server(project, tmp) as srv, srv.client() as http:
        single = post(http, "/v1/predict", as_records(rows.head(1), contract)[0]).json()
        batch = post(http, "/v1/predict", as_records(rows, contract)).json()
        feedback = post(http, "/v1/feedback", {"request_id": single["request_id"], "label": "Y"})
        metrics = _samples(http.get("/metrics").text)
        described = http.get("/v1/model").json()

    X = coerce_frame(rows, contract)
    assert single["prediction"] in {"N", "Y"} and set(single["probabilities"]) == {"N", "Y"}
    assert batch["predictions"] == [str(v) for v in pipeline.predict(X)]
    want = pipeline.predict_proba(X)
    assert np.array([[p["N"], p["Y"]] for p in batch["probabilities"]]) == pytest.approx(want, rel=1e-9)
    assert feedback.status_code == 200
    assert sum(v for (name, _), v in metrics.items() if name == "mloop_predicted_class_total") == 6
    assert not any(name.startswith(("mloop_prediction_count", "mloop_prediction_bucket")) for name, _ in metrics)
    assert (described["task"], described["classes"]) == ("classification", ["N", "Y"])
