"""MLflow, SageMaker and Open Inference Protocol v2 payloads against a real uvicorn server.

Each protocol's documented payloads, built from rows read back from the project's CSV (nulls
included), must answer what /v1/predict and the pipeline offline answer, and be logged.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.helpers.servers import wait_for
from tests.helpers.traffic import as_records, post

from mloop.data.contract import Contract
from mloop.data.predictions import PredictionStore
from mloop.project import Project

from .conftest import expected

pytestmark = pytest.mark.integration

REL = 1e-12


def _v1(client: httpx.Client, records: list[dict[str, Any]]) -> list[float]:
    response = post(client, "/v1/predict", records)
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def _check(response: httpx.Response, client: httpx.Client, champion: Any, rows: pd.DataFrame) -> list[str]:
    """The answer equals the pipeline offline and /v1/predict; returns the request ids."""
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert predictions == pytest.approx(expected(champion, rows).tolist(), rel=REL)
    assert predictions == pytest.approx(_v1(client, as_records(rows, champion[1])), rel=REL)
    ids = response.headers["x-request-ids"].split(",")
    assert len(ids) == len(rows)
    return ids


def _split(rows: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    records = as_records(rows, contract)
    return {"columns": contract.features, "data": [[r[c] for c in contract.features] for r in records]}


# ------------------------------------------------------------------------------------ MLflow


def test_mlflow_dataframe_split(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    body = {"dataframe_split": _split(csv_rows, champion[1])}
    _check(post(client, "/invocations", body), client, champion, csv_rows)


def test_mlflow_dataframe_split_with_index(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    body = {"dataframe_split": {**_split(csv_rows, champion[1]), "index": list(range(len(csv_rows)))}}
    _check(post(client, "/invocations", body), client, champion, csv_rows)
    body["dataframe_split"]["rows"] = []
    response = post(client, "/invocations", body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "dataframe_split", "rows"]


def test_mlflow_dataframe_records(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    body = {"dataframe_records": as_records(csv_rows, champion[1])}
    _check(post(client, "/invocations", body), client, champion, csv_rows)


def test_mlflow_inputs_as_records_and_as_columns(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    records = as_records(csv_rows, champion[1])
    columns = {name: [r[name] for r in records] for name in champion[1].features}
    _check(post(client, "/invocations", {"inputs": records}), client, champion, csv_rows)
    _check(post(client, "/invocations", {"inputs": columns}), client, champion, csv_rows)
    _check(post(client, "/invocations", {"instances": records}), client, champion, csv_rows)


def test_mlflow_csv_with_header(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    text = csv_rows[champion[1].features].to_csv(index=False)
    response = client.post("/invocations", content=text, headers={"content-type": "text/csv"})
    _check(response, client, champion, csv_rows)


def test_mlflow_bad_payloads_are_4xx_naming_the_problem(
    client: httpx.Client, champion: Any, csv_rows: pd.DataFrame
) -> None:
    split = _split(csv_rows.head(2), champion[1])
    split["data"][1] = split["data"][1][:-1]
    short = post(client, "/invocations", {"dataframe_split": split})
    assert short.status_code == 400  # the schema cannot say that a row has one value per column
    assert short.json()["detail"][0]["loc"] == ["body", "dataframe_split", "data", 1]

    records = as_records(csv_rows.head(1), champion[1])
    columns = {name: [value] for name, value in records[0].items()} | {"Gr_Liv_Area": ["big"]}
    typed = post(client, "/invocations", {"inputs": columns})
    assert typed.status_code == 400  # nor, for columns, which names and types they take
    assert [p["loc"] for p in typed.json()["detail"]] == [["body", 0, "Gr_Liv_Area"]]

    params = post(client, "/invocations", {"dataframe_records": records, "params": 3})
    assert params.status_code == 422 and params.json()["detail"][0]["loc"] == ["body", "params"]

    records = as_records(csv_rows.head(2), champion[1])
    records[1]["Gr_Liv_Area"] = "big"
    wrong = post(client, "/invocations", {"dataframe_records": records})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", 1, "Gr_Liv_Area"]

    both = post(client, "/invocations", {"dataframe_records": records, "inputs": records})
    assert both.status_code == 422 and "exactly one of" in both.json()["detail"][0]["msg"]

    xml = client.post("/invocations", content=b"<x/>", headers={"content-type": "application/xml"})
    assert xml.status_code == 415 and "application/xml" in xml.json()["detail"]


# --------------------------------------------------------------------------------- SageMaker


def test_sagemaker_ping(client: httpx.Client) -> None:
    ping = client.get("/ping")
    assert ping.status_code == 200 and ping.headers["content-type"] == "application/json"
    assert ping.json()["status"] == "ready"


def test_sagemaker_json_record_and_records(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    records = as_records(csv_rows, champion[1])
    one = post(client, "/invocations", records[0])
    assert one.status_code == 200
    assert one.json()["predictions"] == pytest.approx(expected(champion, csv_rows.head(1)).tolist(), rel=REL)
    _check(post(client, "/invocations", records), client, champion, csv_rows)


def test_sagemaker_csv_without_header_answers_csv(client: httpx.Client, champion: Any, csv_rows: pd.DataFrame) -> None:
    text = csv_rows[champion[1].features].to_csv(index=False, header=False)
    response = client.post("/invocations", content=text, headers={"content-type": "text/csv", "accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert [float(v) for v in lines] == pytest.approx(expected(champion, csv_rows).tolist(), rel=REL)

    wrong = client.post("/invocations", content="1,2,3\n", headers={"content-type": "text/csv"})
    assert wrong.status_code == 400 and "header" in wrong.json()["detail"][0]["msg"]


def test_sagemaker_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.errors import ServeError
    from mloop.serve.main import resolve_port

    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    assert resolve_port(8000) == 8000
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    assert resolve_port(8000) == 8080
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "http")
    with pytest.raises(ServeError, match="SAGEMAKER_BIND_TO_PORT"):
        resolve_port(8000)


# ---------------------------------------------------------------------------------------- V2


def _v2_inputs(rows: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    records = as_records(rows, contract)
    datatype = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
    return [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": datatype.get(contract.columns[name].dtype, "BYTES"),
            "data": [r[name] for r in records],
        }
        for name in contract.features
    ]


def test_v2_health_and_metadata(client: httpx.Client, project: Project, champion: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get(f"/v2/models/{project.name}").json()
    assert meta["name"] == project.name and meta["versions"] == [champion[2]]
    assert [i["name"] for i in meta["inputs"]] == champion[1].features
    assert {i["datatype"] for i in meta["inputs"]} <= {"INT64", "FP64", "BOOL", "BYTES"}
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert client.get(f"/v2/models/{project.name}/ready").json() == {"name": project.name, "ready": True}
    missing = client.get("/v2/models/other")
    assert missing.status_code == 404 and "other" in missing.json()["error"]


def test_v2_infer_equals_the_pipeline_and_is_logged(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    body = {"id": "req-1", "inputs": _v2_inputs(csv_rows, champion[1])}
    response = post(client, f"/v2/models/{project.name}/infer", body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (project.name, champion[2], "req-1")
    [output] = answer["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("predict", "FP64", [len(csv_rows)])
    assert output["data"] == pytest.approx(expected(champion, csv_rows).tolist(), rel=REL)
    assert output["data"] == pytest.approx(_v1(client, as_records(csv_rows, champion[1])), rel=REL)

    ids = answer["parameters"]["request_ids"].split(",")
    store = PredictionStore(project.predictions_db)
    wait_for(lambda: set(ids) <= set(store.read()["request_id"]), "the V2 predictions in the log")

    versioned = post(client, f"/v2/models/{project.name}/versions/{champion[2]}/infer", body)
    assert versioned.status_code == 200


def test_v2_bad_requests_name_the_problem(
    client: httpx.Client, project: Project, champion: Any, csv_rows: pd.DataFrame
) -> None:
    url = f"/v2/models/{project.name}/infer"
    inputs = _v2_inputs(csv_rows.head(2), champion[1])

    wrong_type = [dict(t) for t in inputs]
    wrong_type[0]["datatype"] = "FLOAT"
    response = post(client, url, {"inputs": wrong_type})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "inputs", 0, "datatype"]

    ragged = [dict(t) for t in inputs]
    ragged[3] = {**ragged[3], "shape": [1], "data": ragged[3]["data"][:1]}
    response = post(client, url, {"inputs": ragged})
    assert response.status_code == 400 and response.json()["detail"][0]["loc"] == ["body", "inputs", 3, "shape"]

    bad_value = [dict(t) for t in inputs]
    index = champion[1].features.index("Gr_Liv_Area")
    bad_value[index] = {**bad_value[index], "data": ["big", 1000]}
    response = post(client, url, {"inputs": bad_value})
    assert response.status_code == 400  # the value of row 0 in the Gr_Liv_Area tensor
    assert response.json()["detail"][0]["loc"] == ["body", "inputs", index, "data", 0]
    assert "error" in response.json()

    missing = post(client, url, {"inputs": [t for t in inputs if t["name"] != "Gr_Liv_Area"]})
    assert missing.status_code == 400
    assert {"loc": ["body", "inputs"], "msg": "no input tensor named 'Gr_Liv_Area'"}.items() <= missing.json()[
        "detail"
    ][0].items()

    hashable = post(client, url, {"inputs": inputs, "outputs": [{"name": []}]})  # a TypeError, 500, before
    assert hashable.status_code == 422 and hashable.json()["detail"][0]["loc"] == ["body", "outputs", 0, "name"]

    unknown = post(client, "/v2/models/nope/infer", {"inputs": inputs})
    assert unknown.status_code == 404
    old = post(client, f"/v2/models/{project.name}/versions/999/infer", {"inputs": inputs})
    assert old.status_code == 404


def test_every_protocol_is_counted_in_metrics(client: httpx.Client) -> None:
    text = client.get("/metrics").text
    for endpoint in ("/invocations", "/v2/models/{name}/infer"):
        assert f'endpoint="{endpoint}"' in text


def test_docs_show_the_protocol_bodies(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    components, paths = schema["components"]["schemas"], schema["paths"]
    invocations = paths["/invocations"]["post"]
    formats = invocations["requestBody"]["content"]
    refs = {item.get("$ref", "").rsplit("/", 1)[-1] for item in formats["application/json"]["schema"]["anyOf"]}
    assert {
        "MlflowDataframeSplit",
        "MlflowDataframeRecords",
        "MlflowInputs",
        "MlflowInstances",
        "PredictRecord",
    } <= refs
    assert "text/csv" in formats
    assert components["MlflowDataframeRecords"]["properties"]["dataframe_records"]["items"] == {
        "$ref": "#/components/schemas/PredictRecord"
    }
    assert invocations["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "InvocationsResponse"
    )
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = paths[path]["post"]
        assert infer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("V2InferenceRequest")
        assert infer["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "V2InferenceResponse"
        )
    tensor = components["V2InferenceRequest"]["properties"]["inputs"]["items"]
    assert (
        tensor["required"] == ["name", "shape", "datatype", "data"]
        and "FP64" in tensor["properties"]["datatype"]["enum"]
    )
    # Every reference in the document resolves to a component.
    text = client.get("/openapi.json").text
    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert ref in components, ref
