"""API keys, POST /admin/reload and the refusal of a version that cannot load, on a real server."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers.servers import run_server, wait_for
from tests.helpers.traffic import as_records, post

from mloop.data.predictions import PredictionStore
from mloop.project import Project
from mloop.registry.versions import ARTIFACT_HASH_TAG, CHALLENGER, CHAMPION, alias_version, set_alias
from mloop.tracking.store import connect

pytestmark = pytest.mark.integration

KEY = "k3y-for-tests-0123456789"


def test_without_keys_predict_is_open_and_admin_is_refused(client: httpx.Client, champion: Any) -> None:
    response = client.post("/admin/reload")
    assert response.status_code == 401 and "none is configured" in response.json()["detail"]


def test_keys_guard_posts_and_admin_and_are_never_logged(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    (tmp_path / "keys.txt").write_text(f"# one key a line\n{KEY}\n", encoding="utf-8")
    env = {"MLOOP_SERVE__API_KEYS_FILE": str(tmp_path / "keys.txt"), "MLOOP_API_KEYS": "second-key"}
    record = as_records(csv_rows.head(1), champion[1])[0]
    with run_server(project, tmp_path, env=env) as srv, srv.client() as http:
        missing = post(http, "/v1/predict", record)
        wrong = http.post("/v1/predict", json=record, headers={"x-api-key": "nope"})
        by_header = http.post("/v1/predict", json=record, headers={"x-api-key": KEY})
        by_bearer = http.post("/invocations", json=[record], headers={"authorization": "Bearer second-key"})
        open_gets = [http.get(path).status_code for path in ("/health", "/ready", "/metrics", "/v1/model", "/ping")]
        admin_without = http.post("/admin/reload")
        admin = http.post("/admin/reload", headers={"authorization": f"Bearer {KEY}"})
        log = srv.log()

    assert missing.status_code == 401 and "API key is required" in missing.json()["detail"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    assert by_header.status_code == 200 and by_bearer.status_code == 200
    assert open_gets == [200] * 5
    assert admin_without.status_code == 401
    assert admin.status_code == 200 and admin.json() == {"changed": False, "version": champion[2], "refused": None}
    assert KEY not in log and "second-key" not in log and "nope" not in log


def test_a_predict_key_is_refused_on_admin_with_403_and_never_logged(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    predict_key, admin_key, rotated = "predict-only-k3y-5678", "admin-k3y-9012", "rotated-predict-k3y-3456"
    keys = tmp_path / "keys.txt"
    keys.write_text(f"predict:{predict_key}\nadmin:{admin_key}\n", encoding="utf-8")
    env = {"MLOOP_SERVE__API_KEYS_FILE": str(keys), "MLOOP_SERVE__RELOAD_INTERVAL_SECONDS": "3600"}
    record = as_records(csv_rows.head(1), champion[1])[0]
    with run_server(project, tmp_path, env=env) as srv, srv.client() as http:
        as_predict = {"x-api-key": predict_key}
        predicted = http.post("/v1/predict", json=record, headers=as_predict)
        admin = http.post("/admin/reload", headers=as_predict)
        feedback = http.post("/v1/feedback", json={"request_id": "x", "label": 1.0}, headers=as_predict)
        by_admin_key = http.post("/v1/predict", json=record, headers={"x-api-key": admin_key})
        reloaded = http.post("/admin/reload", headers={"authorization": f"Bearer {admin_key}"})

        keys.write_text(f"predict:{rotated}\nadmin:{admin_key}\n", encoding="utf-8")  # rotation, no restart
        accepted = lambda: http.post("/v1/predict", json=record, headers={"x-api-key": rotated}).status_code == 200  # noqa: E731
        wait_for(accepted, "the rotated key to be accepted", timeout=15)
        retired = http.post("/v1/predict", json=record, headers=as_predict)
        log = srv.log()

    assert predicted.status_code == 200
    assert admin.status_code == 403 and "scope 'admin'" in admin.json()["detail"]
    assert feedback.status_code == 403 and "scope 'feedback'" in feedback.json()["detail"]
    assert by_admin_key.status_code == 403 and reloaded.status_code == 200
    assert retired.status_code == 401
    # No key is written anywhere: the server's output, the prediction log, the audit log, the spill files.
    stored = b"".join(f.read_bytes() for f in (project.root / ".mloop").rglob("*") if f.is_file())
    for key in (predict_key, admin_key, rotated):
        assert key not in log and key.encode() not in stored, key
    request_id = predicted.json()["request_id"]
    assert request_id in PredictionStore(project.predictions_db).read()["request_id"].tolist()


def _broken_version(project: Project, tmp_path: Path) -> str:
    """A registered version whose pickled model is garbage: loading it fails."""
    info = alias_version(project, CHAMPION)
    assert info is not None
    client: MlflowClient = connect(project)
    broken = Path(mlflow.artifacts.download_artifacts(f"models:/{project.name}/{info.version}", dst_path=str(tmp_path)))
    pickles = list(broken.rglob("*.pkl"))
    assert pickles
    for pickled in pickles:
        pickled.write_bytes(b"not a pickle")
    version = client.create_model_version(project.name, str(broken), run_id=info.run_id)
    for key, value in info.tags.items():
        client.set_model_version_tag(project.name, version.version, key, value)
    return str(version.version)


def _samples(text: str, name: str) -> dict[str, float]:
    return {
        s.labels.get("version", ""): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_a_version_that_fails_to_load_is_refused_and_the_old_one_keeps_serving(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    old = champion[2]
    bad = _broken_version(project, tmp_path)
    env = {"MLOOP_API_KEYS": KEY, "MLOOP_SERVE__RELOAD_INTERVAL_SECONDS": "3600"}  # only /admin/reload loads
    try:
        with run_server(project, tmp_path, env=env) as srv, srv.client() as http:
            set_alias(project, bad, CHAMPION)
            reload = http.post("/admin/reload", headers={"x-api-key": KEY})
            described = http.get("/v1/model").json()
            answer = http.post("/v1/predict", json=as_records(csv_rows, champion[1]), headers={"x-api-key": KEY})
            refused = _samples(http.get("/metrics").text, "mloop_model_refused_total")
            log = srv.log()
    finally:
        set_alias(project, old, CHAMPION)

    assert reload.status_code == 200
    body = reload.json()
    assert body["changed"] is False and body["version"] == old and body["refused"]["version"] == bad
    assert described["version"] == old and described["refused"]["version"] == bad
    assert described["refused"]["reason"]
    assert answer.status_code == 200 and answer.json()["model_version"] == old
    assert refused == {bad: 1.0}
    assert f"refused champion version {bad}" in log


def _copy_version(project: Project, tmp_path: Path) -> str:
    """Another registered version with the champion's model (a challenger that loads)."""
    info = alias_version(project, CHAMPION)
    assert info is not None
    client: MlflowClient = connect(project)
    copy = mlflow.artifacts.download_artifacts(f"models:/{project.name}/{info.version}", dst_path=str(tmp_path))
    version = client.create_model_version(project.name, str(copy), run_id=info.run_id)
    for key, value in info.tags.items():
        client.set_model_version_tag(project.name, version.version, key, value)
    return str(version.version)


class _RunsWhenLoaded:
    """Unpickling this creates a directory: what any code in a tampered pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _stored_files(project: Project, version: str) -> Path:
    uri = connect(project).get_model_version_download_uri(project.name, version)
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)


def test_a_tampered_artifact_is_refused_before_it_is_loaded(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    old = champion[2]
    info = alias_version(project, CHAMPION)
    assert info is not None
    recorded = info.tags[ARTIFACT_HASH_TAG]  # mloop register hashed the champion's files
    # A registered copy of the champion (same files, same tags, so the same recorded hash) whose stored
    # model.pkl is then replaced by a valid pickle that runs code when loaded.
    bad = _copy_version(project, tmp_path / "copy")
    marker = tmp_path / "the-tampered-pickle-ran"
    pickles = list(_stored_files(project, bad).rglob("*.pkl"))
    assert pickles
    for pickled in pickles:
        pickled.write_bytes(pickle.dumps(_RunsWhenLoaded(marker)))
    proof = tmp_path / "loading-it-would-run-code"
    pickle.loads(pickle.dumps(_RunsWhenLoaded(proof)))  # noqa: S301 - shows what loading would have done
    assert proof.is_dir()

    record = as_records(csv_rows.head(1), champion[1])[0]
    env = {"MLOOP_API_KEYS": KEY, "MLOOP_SERVE__RELOAD_INTERVAL_SECONDS": "3600"}  # only /admin/reload loads
    try:
        with run_server(project, tmp_path, env=env) as srv, srv.client() as http:
            before = http.get("/v1/model").json()
            set_alias(project, bad, CHAMPION)
            reload = http.post("/admin/reload", headers={"x-api-key": KEY})
            described = http.get("/v1/model").json()
            answer = http.post("/v1/predict", json=record, headers={"x-api-key": KEY})
            refused = _samples(http.get("/metrics").text, "mloop_model_refused_total")
            log = srv.log()
    finally:
        set_alias(project, old, CHAMPION)

    assert before["artifact_sha256"] == recorded
    assert reload.status_code == 200 and reload.json()["refused"]["version"] == bad
    assert "do not match the hash recorded at registration" in reload.json()["refused"]["reason"]
    assert described["version"] == old and described["refused"]["version"] == bad
    assert answer.status_code == 200 and answer.json()["model_version"] == old
    assert refused == {bad: 1.0}
    assert f"refused champion version {bad}" in log and "do not match the hash" in log
    assert not marker.exists()  # the tampered pickle was never loaded


def test_the_challenger_shadows_requests_off_the_response_path(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    challenger = _copy_version(project, tmp_path / "challenger")
    client: MlflowClient = connect(project)
    client.set_registered_model_alias(project.name, CHALLENGER, challenger)
    store = PredictionStore(project.predictions_db)
    try:
        with run_server(project, tmp_path, env={"MLOOP_SERVE__SHADOW_FRACTION": "1.0"}) as srv, srv.client() as http:
            body = post(http, "/v1/predict", as_records(csv_rows, champion[1])).json()
            shadow_ids = {f"{i}:shadow" for i in body["request_ids"]}

            def shadow_rows() -> pd.DataFrame | None:
                rows = store.read(model_version=challenger, shadow=True)
                rows = rows[rows["request_id"].isin(shadow_ids)]
                return rows if len(rows) == len(shadow_ids) else None

            rows = wait_for(shadow_rows, "the challenger's shadow predictions in the log")
            served = store.read(model_version=challenger)  # what monitoring reads of the challenger
            scored = _samples(http.get("/metrics").text, "mloop_shadow_scored_total")
            agreement = wait_for(
                lambda: _samples(http.get("/metrics").text, "mloop_shadow_agreement") or None, "the shadow agreement"
            )
    finally:
        client.delete_registered_model_alias(project.name, CHALLENGER)

    assert body["model_version"] == champion[2]  # the caller got the champion's answer
    by_id = dict(zip(rows["request_id"], rows["prediction"], strict=True))
    for request_id, prediction in zip(body["request_ids"], body["predictions"], strict=True):
        assert by_id[f"{request_id}:shadow"] == pytest.approx(prediction, rel=1e-12)  # same model, same answer
    assert scored == {"": float(len(csv_rows))}
    assert served.empty  # its shadow rows are not rows it served
    assert agreement == {challenger: 1.0}  # the same model agrees with itself on every record


def test_a_body_over_the_limit_is_413_with_or_without_content_length(
    project: Project, champion: Any, csv_rows: pd.DataFrame, tmp_path: Path
) -> None:
    records = as_records(csv_rows.head(1), champion[1]) * 40  # about 80 kB, within max_batch_size
    body = json.dumps(records).encode()
    with run_server(project, tmp_path, env={"MLOOP_SERVE__MAX_BODY_BYTES": "20000"}) as srv, srv.client() as http:
        declared = http.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        chunked = http.post(
            "/invocations",
            content=iter([body[i : i + 4096] for i in range(0, len(body), 4096)]),
            headers={"content-type": "application/json"},
        )
        small = post(http, "/v1/predict", records[0])
    assert declared.status_code == 413 and "max_body_bytes=20000" in declared.json()["detail"]
    assert chunked.status_code == 413 and "max_body_bytes=20000" in chunked.json()["detail"]
    assert small.status_code == 200
