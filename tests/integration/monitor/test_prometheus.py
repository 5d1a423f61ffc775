"""A real Prometheus scrapes a real mloop server and answers the drift gauge through its HTTP API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.helpers.servers import free_port, require_executable, started

from .conftest import Monitored

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
STARTUP_SECONDS = 60.0
SCRAPE_SECONDS = 60.0


@pytest.fixture(scope="module")
def prometheus(monitored: Monitored, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on 127.0.0.1 with a temp data dir, scraping the server every second with our alert rules."""
    binary = require_executable("prometheus", "prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    target = monitored.server.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "mloop", "static_configs": [{"targets": [target]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    argv = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    url = f"http://127.0.0.1:{port}"
    with started(argv, url, folder / "prometheus.log", ready="/-/ready", timeout=STARTUP_SECONDS) as server:
        yield server.url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_for_series(url: str, promql: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SCRAPE_SECONDS
    while time.monotonic() < deadline:
        result = query(url, promql)
        if result:
            return result
        time.sleep(0.5)
    targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()
    pytest.fail(f"no {promql} after {SCRAPE_SECONDS}s; targets: {targets}")


def test_the_drift_gauge_reads_back_through_prometheus(monitored: Monitored, prometheus: str) -> None:
    series = wait_for_series(prometheus, 'mloop_feature_drift{job="mloop",statistic="psi"}')
    scraped = {s["metric"]["feature"]: float(s["value"][1]) for s in series}
    written = {d["feature"]: d["value"] for d in monitored.latest["drift"] if d["statistic"] == "psi"}
    assert scraped.keys() == written.keys()
    for feature, value in written.items():
        assert scraped[feature] == pytest.approx(value, rel=1e-12), feature
    # The inflated living area is what drifted, and Prometheus sees the window as drifted.
    assert scraped["Gr_Liv_Area"] > 0.2
    assert "Gr_Liv_Area" in monitored.latest["drifted_features"]
    detected = wait_for_series(prometheus, 'mloop_drift_detected{job="mloop"}')
    assert float(detected[0]["value"][1]) == 1.0


def test_the_alert_rules_load_and_drift_is_pending(monitored: Monitored, prometheus: str) -> None:
    wait_for_series(prometheus, 'mloop_drift_detected{job="mloop"}')
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"MloopDataDrift", "MloopNoChampion", "MloopHighErrorRate"} <= loaded
    deadline = time.monotonic() + SCRAPE_SECONDS
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        states = {a["labels"]["alertname"]: a["state"] for a in alerts}
        if "MloopDataDrift" in states:
            break
        time.sleep(0.5)
    # `for: 10m` keeps it pending here; a served champion means no MloopNoChampion at all.
    assert states.get("MloopDataDrift") == "pending", states
    assert "MloopNoChampion" not in states
