"""Shadow evidence of a registered version, read from the prediction log (SQLite or PostgreSQL).

The log pairs each of the challenger's shadow rows (``<id>:shadow``) with the row of the request it
shadowed; :mod:`mloop.core.shadow` turns the pairs into numbers. Here in ``registry`` so the gate reads
it, and ``monitor`` (the report) and the CLI (``mloop models``) too.
"""

from __future__ import annotations

from mloop.core.drift import DriftThresholds
from mloop.core.shadow import DEFAULT_TOLERANCE, ShadowEvidence, shadow_evidence
from mloop.data.predictions import PredictionLog
from mloop.project import Project


def evidence_from_log(
    store: PredictionLog,
    challenger_version: str,
    task: str,
    *,
    champion_version: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    thresholds: DriftThresholds | None = None,
    last: int | None = None,
) -> ShadowEvidence:
    """The evidence of ``challenger_version``'s shadow rows in ``store`` (those beside requests that
    ``champion_version`` served, if given; the newest ``last`` pairs, if given)."""
    pairs = store.read_pairs(challenger_version, champion_version=champion_version, last=last)
    return shadow_evidence(
        pairs["champion_prediction"],
        pairs["challenger_prediction"],
        pairs["label"],
        task,
        tolerance=tolerance,
        thresholds=thresholds,
    )


def version_evidence(
    project: Project, challenger_version: str, champion_version: str | None = None, last: int | None = None
) -> ShadowEvidence:
    """:func:`evidence_from_log` on the project's prediction log with its settings (``gate.shadow.tolerance``,
    the ``monitor`` drift thresholds); no evidence (0 requests) when nothing has been logged yet.

    Raises ``PredictionLogError`` when the log cannot be read.
    """
    config = project.config
    tolerance = config.gate.shadow.tolerance
    if not project.has_prediction_log():
        return shadow_evidence([], [], [], config.task, tolerance=tolerance)
    monitor = config.monitor
    thresholds = DriftThresholds(monitor.psi_threshold, monitor.ks_pvalue, monitor.chi2_pvalue)
    return evidence_from_log(
        project.prediction_store(),
        challenger_version,
        config.task,
        champion_version=champion_version,
        tolerance=tolerance,
        thresholds=thresholds,
        last=last,
    )


__all__ = ["evidence_from_log", "version_evidence"]
