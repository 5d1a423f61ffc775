"""Issue 5's "done when" on the Ames time-ordered replay, with a real uvicorn server kept running throughout
and the controller run as a real CLI subprocess.

* Drift injected: 2008–2010 sales replayed in time order, with prices inflated month by month and a new
  neighbourhood mix. The controller sees the drift and the decay, retrains, the gate promotes the
  challenger, the running server switches to it without a restart, and the new model is better than the
  old one on drifted sales neither has seen.
* A controller SIGKILLed in the middle of a retrain — holding the lock, its retraining data already
  assembled and snapshotted, so validating or training the challenger — leaves the champion served and
  the lock free, and the next controller completes the retrain.

The no-drift and corrupted-label cases, and a kill right after the lock is taken, are in
``test_loop_cases.py``. Everything is bounded: one small model per version (no search), a few hundred rows
of traffic, a deadline on every wait.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from tests.helpers.cli import clean_env, mloop_argv, mloop_json
from tests.helpers.projects import example_project, train_champion
from tests.helpers.servers import Server, background, run_server
from tests.helpers.traffic import send_with_labels

from mloop.data.contract import coerce_frame, load_contract
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.gate import version_contract
from mloop.registry.scoring import score_model
from mloop.registry.versions import CHAMPION, alias_version, list_versions, load_model
from mloop.retrain.controller import LOCK_FILE
from mloop.retrain.lock import RetrainLock

pytestmark = pytest.mark.e2e

BATCH = 50
SWITCH_SECONDS = 30.0  # the server polls the registry every 0.5 s
KILL_WAIT_SECONDS = 180.0
MONTHLY_INFLATION = 0.015  # prices rise 1.5% a month from January 2008: +25% after 15 months
# The new mix: houses from these neighbourhoods (mostly pricier, newer, bigger; 23% of the 2006–2007
# sales) make up 70% of the traffic.
NEW_MIX = ["Northridge_Heights", "Somerset", "Stone_Brook", "Timberland", "Northridge", "Clear_Creek", "Sawyer_West"]
NEW_MIX_SHARE = 0.7
TRAFFIC_ROWS = 400  # two monitoring windows of 200
UNSEEN_ROWS = 100  # drifted sales of the same months, never sent: every fifth sale is kept back


def inflated(frame: pd.DataFrame) -> pd.Series:
    """Sale prices inflated by MONTHLY_INFLATION per month since January 2008, in whole dollars (the
    contract holds the target to integers, as in the training data)."""
    months = (frame["Year_Sold"] - 2008) * 12 + (frame["Mo_Sold"] - 1)
    return (frame["Sale_Price"] * (1 + MONTHLY_INFLATION) ** months.clip(lower=0)).round()


def drifted_sales(ames: pd.DataFrame, rows: int, seed: int = 11) -> pd.DataFrame:
    """2008–2010 sales with the new neighbourhood mix, in the order they were sold."""
    late = ames[ames["Year_Sold"] >= 2008]
    new = late["Neighborhood"].isin(NEW_MIX)
    picked = pd.concat(
        [
            late[new].sample(n=round(rows * NEW_MIX_SHARE), random_state=seed),
            late[~new].sample(n=rows - round(rows * NEW_MIX_SHARE), random_state=seed),
        ]
    )
    return picked.sort_values(["Year_Sold", "Mo_Sold"], kind="stable").reset_index(drop=True)


def send(client: httpx.Client, project: Project, rows: pd.DataFrame, labels: pd.Series) -> list[str]:
    """POST ``rows`` to /v1/predict in batches (features and the time column, as a client would), feed
    ``labels`` back through /v1/feedback, and return the model version that answered each batch."""
    contract = load_contract(project.contract_path)
    return send_with_labels(client, rows, [*contract.features, *contract.with_role("time")], labels, BATCH)


def served_version(server: Server) -> str:
    return str(httpx.get(f"{server.url}/v1/model", timeout=10).json()["version"])


def wait_for_version(server: Server, version: str, timeout: float = SWITCH_SECONDS) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if served_version(server) == version:
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"the running server still answers with {served_version(server)}, not {version}:\n{server.log()}")


def rmse(project: Project, version: str, rows: pd.DataFrame, labels: pd.Series) -> float:
    info = next(v for v in list_versions(project) if v.version == version)
    model = load_model(project, version)
    scores = score_model(model, coerce_frame(rows, version_contract(project, info)), labels.astype(float), "regression")
    return float(scores["rmse"])


@pytest.fixture(scope="module")
def early(ames: pd.DataFrame) -> pd.DataFrame:
    """The 2007 sales (694): few enough that 400 production rows weigh in a retrain, since the model
    cannot see the sale date and learns the new prices only from their share of the training data."""
    return ames[ames["Year_Sold"] == 2007].reset_index(drop=True)


@pytest.fixture(scope="module")
def drifted(ames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(traffic in time order, unseen sales from the same months to judge the models on)."""
    sales = drifted_sales(ames, TRAFFIC_ROWS + UNSEEN_ROWS)
    kept_back = sales.index % 5 == 4
    return sales[~kept_back].reset_index(drop=True), sales[kept_back].reset_index(drop=True)


@pytest.fixture
def serving(tmp_path: Path, early: pd.DataFrame) -> Iterator[tuple[Project, Server]]:
    # The example's config: a small boosted model, no search.
    project = example_project(tmp_path / "house-prices", early)
    assert "search" not in yaml.safe_load(project.config_file.read_text(encoding="utf-8")).get("train", {})
    train_champion(project)
    with run_server(project, tmp_path) as server:
        yield project, server


def test_injected_drift_retrains_promotes_a_better_model_and_the_running_server_switches(
    serving: tuple[Project, Server], drifted: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    project, server = serving
    traffic, unseen = drifted
    with server.client() as client:
        answered_by = send(client, project, traffic, inflated(traffic))
    assert set(answered_by) == {"1"}

    window = mloop_json("monitor", "--json", project=project, timeout=600)
    assert window["dataset_drift"] and "Neighborhood" in window["drifted_features"], window["drifted_features"]

    outcome = mloop_json(
        "retrain", "--if-needed", "--json", project=project, timeout=600
    )  # the controller: one decision, as a cron job
    assert outcome["retrained"] is True and outcome["promoted"] is True, outcome
    reasons = " ".join(outcome["reasons"])
    assert "data drift" in reasons and "worse than at training time" in reasons, reasons
    new = outcome["version"]
    assert new != "1" and alias_version(project, CHAMPION).version == new  # type: ignore[union-attr]

    # The server that was running all along now answers with the new champion, without a restart.
    wait_for_version(server, new)
    with server.client() as client:
        assert set(send(client, project, unseen.head(BATCH), inflated(unseen.head(BATCH)))) == {new}

    # Better by the gate, on the freshest rows it held out …
    gate = json.loads(next(v for v in list_versions(project) if v.version == new).tags["mloop.gate"])
    assert gate["promote"] is True and gate["challenger_value"] < gate["champion_value"]
    # … and on drifted sales neither model was trained or gated on.
    before, after = rmse(project, "1", unseen, inflated(unseen)), rmse(project, new, unseen, inflated(unseen))
    assert after < 0.95 * before, (before, after)  # measured: 74k → 63k

    # Every step is in the audit log: why it retrained, and the promotion of the new version.
    events = audit.read(project.audit_log)
    decision = [e for e in events if e["event"] == "retrain_decision"][-1]
    assert decision["retrain"] is True
    assert any(e["event"] == "retrain" and e["version"] == new and e["promoted"] for e in events)
    assert any(e["event"] == "promote" and e["version"] == new for e in events)


def test_killing_the_controller_while_it_trains_leaves_the_champion_served_and_the_lock_usable(
    serving: tuple[Project, Server], drifted: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    project, server = serving
    traffic = drifted[0]
    with server.client() as client:
        send(client, project, traffic, inflated(traffic))
    snapshots = set(os.listdir(project.snapshots_dir))
    lock_path = project.workspace / LOCK_FILE

    argv = mloop_argv("retrain", "--json", project=project)
    with background(argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as controller:
        # Wait until the controller holds the lock and has written the retraining snapshot: it dies past
        # choosing the data, while it validates it or trains the challenger.
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not (
            RetrainLock(lock_path).holder().get("pid") == controller.pid
            and set(os.listdir(project.snapshots_dir)) - snapshots
        ):
            assert controller.poll() is None, "the controller ended before it started training"
            assert time.monotonic() < deadline, "the controller never got to training"
            time.sleep(0.05)
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait(30)
    assert controller.returncode == -signal.SIGKILL

    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version == "1"
    assert served_version(server) == "1"
    assert not [
        e for e in audit.read(project.audit_log) if e["event"] in ("retrain", "promote") and e["version"] != "1"
    ]
    with RetrainLock(lock_path):  # the kernel released the dead controller's flock
        pass

    # The next controller retrains from the same data and the server picks up what it promotes.
    outcome = mloop_json("retrain", "--json", project=project, timeout=600)
    assert outcome["retrained"] is True and outcome["version"] is not None, outcome
    assert outcome["promoted"] is True, outcome
    wait_for_version(server, outcome["version"])
    assert np.isfinite(rmse(project, outcome["version"], traffic, inflated(traffic)))
