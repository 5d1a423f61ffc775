"""The whole loop on a slice of Ames: train, serve (real uvicorn), replay, monitor, retrain, promote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mloop.demo.runner import run_demo
from mloop.registry import audit
from mloop.registry.versions import CHAMPION, alias_version, list_versions

pytestmark = pytest.mark.e2e


def test_demo_retrains_promotes_and_serves_the_new_champion(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", traffic_limit=1000)
    project = result.project

    # Monitoring saw every window of the replayed 2008–2009 sales, with labels fed back.
    assert len(result.windows) == 5
    assert all(w.n_labelled == w.n_rows for w in result.windows)
    assert any(w.drift.dataset_drift for w in result.windows)

    # A retrained version won the gate on the same holdout and became champion.
    assert result.promoted, "no retrained model was promoted"
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version == result.promoted[-1] != "1"
    gate = json.loads(champion.tags["mloop.gate"])
    assert gate["promote"] is True and gate["champion_value"] > gate["challenger_value"]

    # The running server switched to it without a restart.
    assert result.final_version == champion.version
    first_new = result.served_versions.index(result.promoted[0])
    assert set(result.served_versions[:first_new]) == {"1"}

    # Every decision is in the audit trail; every version carries its lineage.
    events = [e for e in audit.read(project.audit_log) if e["event"] in ("promote", "reject")]
    assert [e["version"] for e in events if e["event"] == "promote"][0] == "1"
    assert any(e["event"] == "retrain" for e in audit.read(project.audit_log))
    for version in list_versions(project):
        assert {"mloop.data_hash", "mloop.contract_hash", "mloop.metric.rmse"} <= version.tags.keys()
    assert (project.workspace / "report.html").read_text().count("<svg") >= 2
