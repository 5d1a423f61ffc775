"""``gate.shadow`` in mloop.yaml: defaults that require nothing, and bad values refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import load_config
from mloop.errors import ConfigError
from mloop.project import Project
from mloop.registry.shadow import version_evidence
from tests.helpers.servers import free_port

BASE = """
name: shadowed
task: regression
data: {source: train.csv, target: y}
"""


def _write(tmp_path: Path, gate: str) -> Path:
    path = tmp_path / "mloop.yaml"
    path.write_text(BASE + gate, encoding="utf-8")
    return path


def test_by_default_no_shadow_evidence_is_required(tmp_path: Path) -> None:
    shadow = load_config(_write(tmp_path, "")).gate.shadow
    assert (shadow.min_requests, shadow.max_quality_loss, shadow.tolerance) == (0, None, 0.05)


def test_the_shadow_settings_load(tmp_path: Path) -> None:
    gate = "gate: {shadow: {min_requests: 500, max_quality_loss: 0.02, tolerance: 0.1}}\n"
    shadow = load_config(_write(tmp_path, gate)).gate.shadow
    assert (shadow.min_requests, shadow.max_quality_loss, shadow.tolerance) == (500, 0.02, 0.1)


@pytest.mark.parametrize(
    ("gate", "field"),
    [
        ("gate: {shadow: {min_requests: -1}}\n", "gate.shadow.min_requests"),
        ("gate: {shadow: {max_quality_loss: -0.1}}\n", "gate.shadow.max_quality_loss"),
        ("gate: {shadow: {min_request: 10}}\n", "gate.shadow.min_request"),
    ],
)
def test_bad_shadow_settings_are_refused_naming_the_field(tmp_path: Path, gate: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, gate))
    assert field in info.value.message


def test_a_project_without_a_prediction_log_has_no_evidence_yet(tmp_path: Path) -> None:
    project = Project.load(_write(tmp_path, ""))
    evidence = version_evidence(project, "2", "1")
    assert evidence.requests == 0 and evidence.agreement is None
    assert not project.predictions_db.exists()  # reading evidence creates no log


def test_an_unreachable_log_fails_the_shadow_check_with_the_reason_not_a_traceback(tmp_path: Path) -> None:
    from mloop.registry.gate import _shadow_checks

    port = free_port()  # nothing listens there: the connection is refused at once
    config = f"gate: {{shadow: {{min_requests: 10}}}}\nmonitor: {{predictions_url: 'postgresql://u:s3cret@127.0.0.1:{port}/db'}}\n"
    [check] = _shadow_checks(Project.load(_write(tmp_path, config)), "2", "1")
    assert not check.passed and check.name == "shadow"
    assert check.detail.startswith("cannot read the shadow evidence (gate.shadow): cannot open the prediction log")
    assert f"127.0.0.1:{port}/db" in check.detail and "s3cret" not in check.detail
    assert _shadow_checks(Project.load(_write(tmp_path, "")), "2", "1") == []  # nothing required: no log opened
