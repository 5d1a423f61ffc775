"""`mloop report`: one self-contained HTML page (inline SVG, no scripts, no network)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mloop.core.shadow import ShadowEvidence, live_metric
from mloop.errors import PredictionLogError
from mloop.monitor.runner import history
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.shadow import version_evidence
from mloop.registry.versions import CHALLENGER, CHAMPION, VersionInfo, list_versions

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
.drift{color:#b00020;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:.5rem}h3{font-size:1rem}.muted{color:#777}svg text{font-size:11px;fill:#444}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: float | None) -> str:
    """Prices without decimals or exponents (25,000), small metrics with four significant digits."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def line_chart(series: dict[str, list[float | None]], labels: list[str], title: str) -> str:
    """An SVG line chart of one or more series over the same x labels."""
    width, height, pad = 760, 240, 48
    values = [v for s in series.values() for v in s if v is not None]
    if not values or not labels:
        return f"<p class='muted'>{_esc(title)}: no data yet.</p>"
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    low, high = low - 0.05 * span, high + 0.05 * span

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(1, len(labels) - 1))

    def y(v: float) -> float:
        return height - pad + (pad * 2 - height) * (v - low) / (high - low)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    parts = [f"<svg width='{width}' height='{height}' role='img' aria-label='{_esc(title)}'>"]
    parts.append(f"<text x='{pad}' y='16'>{_esc(title)}</text>")
    for frac in (0.0, 0.5, 1.0):
        v = low + frac * (high - low)
        parts.append(f"<line x1='{pad}' x2='{width - pad}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#eee'/>")
        parts.append(f"<text x='2' y='{y(v) + 4:.1f}'>{_num(v)}</text>")
    for i, label in enumerate(labels):
        parts.append(f"<text x='{x(i) - 8:.1f}' y='{height - pad + 16}'>{_esc(label)}</text>")
    for (name, points), color in zip(series.items(), colors, strict=False):
        coords = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None]
        parts.append(
            f"<polyline class='series' fill='none' stroke='{color}' stroke-width='2' points='{' '.join(coords)}'/>"
        )
        parts.extend(
            f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='{color}'>"
            f"<title>{_esc(name)}: {_num(v)}</title></circle>"
            for i, v in enumerate(points)
            if v is not None
        )
        legend_y = 16 + 14 * (list(series).index(name) + 1)
        parts.append(f"<text x='{width - pad - 160}' y='{legend_y}' style='fill:{color}'>■ {_esc(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: dict[str, float], threshold: float, title: str) -> str:
    """Horizontal SVG bars, the threshold drawn as a line."""
    if not values:
        return f"<p class='muted'>{_esc(title)}: no data yet.</p>"
    width, row, left = 760, 18, 170
    top = max(max(values.values()), threshold) * 1.1 or 1.0
    height = row * len(values) + 30
    parts = [f"<svg width='{width}' height='{height}' role='img' aria-label='{_esc(title)}'>"]
    parts.append(f"<text x='0' y='12'>{_esc(title)}</text>")
    for i, (name, v) in enumerate(values.items()):
        y0 = 20 + i * row
        w = (width - left - 60) * v / top
        color = "#d62728" if v > threshold else "#1f77b4"
        parts.append(f"<text x='0' y='{y0 + 12}'>{_esc(name)}</text>")
        parts.append(f"<rect class='bar' x='{left}' y='{y0}' width='{w:.1f}' height='{row - 4}' fill='{color}'/>")
        parts.append(f"<text x='{left + w + 4:.1f}' y='{y0 + 12}'>{v:.3f}</text>")
    tx = left + (width - left - 60) * threshold / top
    parts.append(f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='18' y2='{height}' stroke='#b00020' stroke-dasharray='4'/>")
    parts.append("</svg>")
    return "".join(parts)


def distribution_chart(dist: dict[str, Any], note: str = "") -> str:
    """Reference vs current shares of one feature as paired vertical bars."""
    cells: list[str] = dist.get("cells") or []
    reference: list[float] = dist.get("reference") or []
    current: list[float] = dist.get("current") or []
    title = f"{dist.get('feature', '?')}{note}"
    if not cells or len(reference) != len(cells) or len(current) != len(cells):
        return f"<p class='muted'>{_esc(title)}: no data.</p>"
    width, height, pad, top = 370, 190, 28, max([*reference, *current, 0.01]) * 1.1
    slot = (width - 2 * pad) / len(cells)
    parts = [f"<svg class='dist' width='{width}' height='{height}' role='img' aria-label='{_esc(title)}'>"]
    parts.append(f"<text x='0' y='12'>{_esc(title)}</text>")
    parts.append(
        "<text x='230' y='12' style='fill:#999'>■ training</text><text x='300' y='12' style='fill:#1f77b4'>■ now</text>"
    )
    base = height - pad
    for i, (cell, ref, cur) in enumerate(zip(cells, reference, current, strict=True)):
        x0 = pad + i * slot
        for j, (value, color, who) in enumerate(((ref, "#bbb", "training"), (cur, "#1f77b4", "now"))):
            h = (base - 20) * value / top
            x, w = x0 + 1 + j * slot / 2, max(slot / 2 - 2, 1)
            parts.append(
                f"<rect class='bar' x='{x:.1f}' y='{base - h:.1f}' width='{w:.1f}' height='{h:.1f}' fill='{color}'>"
                f"<title>{_esc(cell)} ({who}): {value:.1%}</title></rect>"
            )
        if len(cells) <= 12:
            label = cell if len(cell) <= 8 else cell[:7] + "…"
            parts.append(f"<text x='{x0:.1f}' y='{base + 12}' style='font-size:9px'>{_esc(label)}</text>")
    parts.append(f"<line x1='{pad}' x2='{width - pad}' y1='{base}' y2='{base}' stroke='#999'/></svg>")
    return "".join(parts)


def _distributions(latest: dict[str, Any] | None) -> str:
    if not latest or not latest.get("distributions"):
        return ""
    psi = {d["feature"]: d["value"] for d in latest["drift"] if d["statistic"] == "psi"}
    charts = [
        distribution_chart(d, f" (PSI {psi[d['feature']]:.3f})" if d.get("feature") in psi else "")
        for d in latest["distributions"]
    ]
    return "<h3>Distributions, training vs latest window</h3><div class='grid'>" + "".join(charts) + "</div>"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


DATA_QUALITY_ROWS = 20  # features listed in the report's data-quality table; the rest are summed up in a line


def data_quality_section(latest: dict[str, Any] | None) -> str:
    """The latest window's data quality per feature (monitor.data_quality): the features with issues first."""
    report = (latest or {}).get("data_quality")
    if not isinstance(report, dict):
        return "<p class='muted'>No data-quality figures yet: run <code>mloop monitor</code>.</p>"
    features: list[dict[str, Any]] = report.get("features") or []

    def flagged(f: dict[str, Any], kind: str, text: str) -> str:
        return f"<span class='drift'>{text}</span>" if kind in f.get("issues", []) else text

    def weight(f: dict[str, Any]) -> tuple[int, float]:
        counts = f["unseen"] + f["out_of_contract"] + f["coerced"] + f["coercion_failures"]
        return -len(f.get("issues", [])), -(counts + f["null_rate"] * f["n_rows"])

    counted = ("nulls", "unseen", "out_of_contract", "coerced", "coercion_failures")
    noted = [f for f in features if f.get("issues") or any(f[k] for k in counted)]
    rows = []
    for f in sorted(noted, key=weight)[:DATA_QUALITY_ROWS]:
        unseen = ", ".join(f["unseen_values"]) + (" …" if f["n_unseen_values"] > len(f["unseen_values"]) else "")
        rows.append(
            [
                _esc(f["feature"]),
                flagged(f, "nulls", _share(f["null_rate"])),
                _share(f.get("reference_null_rate")),
                flagged(f, "unseen_categories", str(f["unseen"])) + (f" ({_esc(unseen)})" if unseen else ""),
                flagged(f, "out_of_contract", str(f["out_of_contract"])),
                flagged(f, "coerced", str(f["coerced"])),
                flagged(f, "coercion_failures", str(f["coercion_failures"])),
            ]
        )
    with_issues = report.get("features_with_issues") or []
    summary = (
        f"<p>{len(with_issues)} of {len(features)} features have data-quality issues in the latest window "
        f"({report.get('n_rows', 0)} rows){': ' + _esc(', '.join(with_issues)) if with_issues else ''}. "
        "<span class='muted'>Null rate as sent, beside the training reference's; unseen: rows with a category "
        "training never had; out of contract: outside the contract's range or category set; coerced: sent as "
        "another type and converted; unreadable: seen by the model as missing. Thresholds: monitor.data_quality; "
        "figures past them in red.</span></p>"
    )
    if not rows:
        return summary + "<p class='muted'>Every feature was sent complete, in contract and of its type.</p>"
    left = len(noted) - len(rows)
    more = f"<p class='muted'>{left} more features with figures above zero.</p>" if left > 0 else ""
    header = ["feature", "null rate", "training null rate", "unseen", "out of contract", "coerced", "unreadable"]
    return summary + _table(header, rows) + more


def _multivariate(window: dict[str, Any], section: str, key: str) -> float | None:
    entry = (window.get("multivariate") or {}).get(section) or {}
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def multivariate_section(windows: list[dict[str, Any]], labels: list[str]) -> str:
    """Charts of the two multivariate statistics per window, each beside its calibrated threshold."""
    if not any(isinstance(w.get("multivariate"), dict) for w in windows):
        return (
            "<p class='muted'>No multivariate figures yet: they need a version trained with "
            "monitor.multivariate.enabled, and a <code>mloop monitor</code> run.</p>"
        )
    note = (
        "<p class='muted'>Drift of the features taken together, which per-feature tests cannot see (a relation "
        "between features that broke). PCA reconstruction error: the window's median row error against the "
        "training reference's principal components; domain classifier: how well a classifier tells the window "
        "from training rows (0.5: not at all). Each threshold is calibrated on the reference's own resamples to "
        "alarm on monitor.multivariate.false_alarm_rate of unchanged windows.</p>"
    )
    charts = [
        line_chart(
            {
                "reconstruction error": [_multivariate(w, "reconstruction", "error") for w in windows],
                "threshold": [_multivariate(w, "reconstruction", "threshold") for w in windows],
            },
            labels,
            "PCA reconstruction error per window",
        ),
        line_chart(
            {
                "domain classifier AUROC": [_multivariate(w, "domain_classifier", "auroc") for w in windows],
                "threshold": [_multivariate(w, "domain_classifier", "threshold") for w in windows],
            },
            labels,
            "domain classifier AUROC per window",
        ),
    ]
    return note + "".join(charts)


def _together(window: dict[str, Any]) -> str:
    """The windows table's cell: which multivariate statistic alarmed, if any."""
    report = window.get("multivariate")
    if not isinstance(report, dict):
        return ""
    moved = [
        name
        for name, section in (("PCA", "reconstruction"), ("classifier", "domain_classifier"))
        if (report.get(section) or {}).get("drifted")
    ]
    return f"<span class='drift'>{_esc(', '.join(moved))}</span>" if moved else "no"


def shadow_rows(project: Project, versions: list[VersionInfo]) -> list[list[str]]:
    """One row per version with shadow evidence: the challenger against today's champion, and the champion
    against the versions whose traffic it shadowed before it was promoted (the evidence it was promoted on)."""
    champion = next((v for v in versions if CHAMPION in v.aliases), None)
    metric = live_metric(project.config.primary_metric, project.config.task)
    found: list[tuple[VersionInfo, str, ShadowEvidence]] = []
    for info in versions:
        if CHALLENGER in info.aliases and champion is not None and champion.version != info.version:
            found.append((info, f"v{champion.version}", version_evidence(project, info.version, champion.version)))
        elif CHAMPION in info.aliases:
            found.append((info, "before promotion", version_evidence(project, info.version)))
    rows = []
    for info, against, evidence in found:
        if not evidence.requests:
            continue
        drift = evidence.drift
        statistic = "ks_pvalue" if "ks_pvalue" in drift else "chi2_pvalue"
        rows.append(
            [
                _esc(info.version),
                _esc(", ".join(info.aliases)),
                _esc(against),
                str(evidence.requests),
                _share(evidence.agreement),
                _share(evidence.mean_relative_difference),
                f"{_num(drift.get('psi'))} / {_num(drift.get(statistic))}" if drift else "",
                str(evidence.labelled),
                _num(evidence.champion_quality.get(metric)),
                _num(evidence.challenger_quality.get(metric)),
                f"{loss:+.1%}" if (loss := evidence.quality_loss(metric)) is not None else "",
            ]
        )
    return rows


def _shadow_section(project: Project, versions: list[VersionInfo]) -> str:
    """The "Shadow evidence" table, or a line saying why there is none."""
    if not project.has_prediction_log():
        return "<p class='muted'>No prediction log yet.</p>"
    try:
        rows = shadow_rows(project, versions)
    except PredictionLogError as exc:
        return f"<p class='muted'>Shadow evidence unavailable: {_esc(exc.message)}</p>"
    if not rows:
        return (
            "<p class='muted'>No shadow-scored requests: give a version the challenger alias and set "
            "serve.shadow_fraction above 0.</p>"
        )
    metric = live_metric(project.config.primary_metric, project.config.task)
    header = [
        "version",
        "aliases",
        "shadowed",
        "requests",
        "agreement",
        "mean rel. diff",
        "PSI / p-value",
        "labelled",
        f"served {metric}",
        f"shadow {metric}",
        "quality loss",
    ]
    note = (
        "<p class='muted'>Each version's shadow predictions beside the served ones, on the same live requests: "
        "agreement (regression: within gate.shadow.tolerance), PSI and KS/chi² p-value of the shadow predictions "
        f"against the served ones, and {_esc(metric)} of each on the labelled requests.</p>"
    )
    return note + _table(header, rows)


def render_report(project: Project) -> str:
    windows = history(project)
    metric = project.config.primary_metric
    labels = [f"{w['model_version']}·{i}" for i, w in enumerate(windows)]
    quality_chart = line_chart(
        {
            f"live {metric}": [w["quality"].get(metric) for w in windows],
            f"estimated {metric} (before labels)": [(w.get("estimated_quality") or {}).get(metric) for w in windows],
            f"training {metric}": [w["training_quality"].get(metric) for w in windows],
        },
        labels,
        f"{metric} per window (label: version·window)",
    )
    drift_chart = line_chart(
        {"drifted features": [float(w["n_drifted"]) for w in windows]}, labels, "drifted features per window"
    )
    latest = windows[-1] if windows else None
    psi = {}
    if latest:
        psi = {d["feature"]: d["value"] for d in latest["drift"] if d["statistic"] == "psi"}
        psi = dict(sorted(psi.items(), key=lambda kv: -kv[1])[:15])
    psi_chart = bar_chart(psi, project.config.monitor.psi_threshold, "PSI per feature, latest window (top 15)")
    registered = list_versions(project)
    versions = [
        [
            _esc(v.version),
            _esc(", ".join(v.aliases)),
            _num(v.metric(metric)),
            _esc(v.tags.get("mloop.data_hash", "")[:12]),
            _esc(json.loads(v.tags["mloop.gate"]).get("reason", "")) if "mloop.gate" in v.tags else "",
        ]
        for v in registered
    ]
    events = [
        [_esc(e["ts"]), _esc(e["event"]), _esc(e.get("version", "")), _esc(e.get("reason", ""))]
        for e in audit.read(project.audit_log)
    ]
    window_rows = [
        [
            str(i),
            _esc(w["model_version"]),
            str(w["n_rows"]),
            f"<span class='drift'>{w['n_drifted']}</span>" if w["dataset_drift"] else str(w["n_drifted"]),
            _esc(", ".join(w["drifted_features"][:4])),
            _together(w),
            _num((w.get("estimated_quality") or {}).get(metric)),
            _num(w["quality"].get(metric)),
            f"{w['decay']:+.1%}" if w.get("decay") is not None else "",
        ]
        for i, w in enumerate(windows)
    ]
    window_header = [
        "window",
        "version",
        "rows",
        "drifted",
        "features",
        "together",
        f"estimated {metric}",
        metric,
        "decay",
    ]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>mloop report: {_esc(project.name)}</title><style>{_CSS}</style></head><body>
<h1>mloop report: {_esc(project.name)}</h1><p class="muted">generated {now} · task {project.config.task}
· gate metric {metric}</p>
<h2>Quality over time</h2>{quality_chart}
<h2>Drift over time</h2>{drift_chart}
<h2>Multivariate drift</h2>{multivariate_section(windows, labels)}
<h2>Drift per feature</h2>{psi_chart}{_distributions(latest)}
<h2>Data quality</h2>{data_quality_section(latest)}
<h2>Monitoring windows</h2>{_table(window_header, window_rows)}
<h2>Model versions</h2>{_table(["version", "aliases", metric, "data", "gate"], versions)}
<h2>Shadow evidence</h2>{_shadow_section(project, registered)}
<h2>Promotions and rollbacks</h2>{_table(["time", "event", "version", "reason"], events)}
</body></html>"""


def write_report(project: Project, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(project), encoding="utf-8")
    return path
