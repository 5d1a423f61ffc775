"""`mloop demo`: the whole loop on the Ames house prices, with 2008–2010 sales replayed as traffic.

Train on 2006–2007 sales, serve the champion from a real uvicorn server, replay later sales as
requests with their true prices fed back, monitor each window, let the retraining controller decide,
and show the server answering with the new champion without a restart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mloop.data.contract import load_contract
from mloop.errors import MloopError, ServeError
from mloop.monitor.report import write_report
from mloop.monitor.runner import WindowResult, monitor
from mloop.monitor.tables import number
from mloop.pipeline import stages
from mloop.project import Project
from mloop.registry import audit
from mloop.registry.versions import CHAMPION, alias_version, list_versions
from mloop.retrain.controller import retrain
from mloop.terminal import heading, make_console, new_table

BATCH = 25
TRAIN_YEARS = (2006, 2007)
console = make_console()


def ames() -> pd.DataFrame:
    """The bundled Ames housing data (2,930 sales, 2006–2010)."""
    with files("mloop.examples").joinpath("ames.csv.gz").open("rb") as handle:
        return pd.read_csv(handle, compression="gzip")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A real uvicorn server in a subprocess, stopped on exit."""

    config: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.log = self.config.parent / ".mloop" / "server.log"
        env = {**os.environ, "MLOOP_CONFIG": str(self.config)}
        argv = [sys.executable, "-m", "mloop", "-c", str(self.config), "serve", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(f"the demo server exited early; see {self.log}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise ServeError(f"the demo server was not ready within {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Replay:
    """Sends traffic and labels, and remembers what each window looked like."""

    client: httpx.Client
    features: list[str]
    target: str
    windows: list[WindowResult] = field(default_factory=list)
    served_versions: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # the summary table, one row per window

    def send(self, rows: pd.DataFrame) -> None:
        records: list[dict[str, Any]] = [
            {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
            for rec in rows[self.features].to_dict(orient="records")
        ]
        answer = self.client.post("/v1/predict", json=records)
        if answer.status_code != 200:
            raise ServeError(f"the server answered {answer.status_code}: {answer.text[:300]}")
        body = answer.json()
        self.served_versions.append(str(body["model_version"]))
        labels = [
            {"request_id": rid, "label": float(y)}
            for rid, y in zip(body["request_ids"], rows[self.target], strict=True)
        ]
        fed = self.client.post("/v1/feedback", json=labels)
        if fed.status_code != 200:
            raise ServeError(f"feedback answered {fed.status_code}: {fed.text[:300]}")


def _write_project(folder: Path) -> tuple[Project, pd.DataFrame]:
    folder.mkdir(parents=True, exist_ok=True)
    data = ames()
    train = data[data["Year_Sold"].isin(TRAIN_YEARS)]
    traffic = data[~data["Year_Sold"].isin(TRAIN_YEARS)].sort_values(["Year_Sold", "Mo_Sold"], kind="stable")
    train.to_csv(folder / "ames-2006-2007.csv", index=False)
    config = files("mloop.examples").joinpath("house_prices.yaml").read_text(encoding="utf-8")
    (folder / "mloop.yaml").write_text(config, encoding="utf-8")
    return Project.load(folder / "mloop.yaml"), traffic.reset_index(drop=True)


def _windows(traffic: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """Windows of ``size`` rows; a short remainder joins the last window rather than stand alone."""
    starts = list(range(0, len(traffic), size))
    if len(starts) > 1 and len(traffic) - starts[-1] < size // 2:
        starts.pop()
    bounds = [*starts[1:], len(traffic)]
    return [traffic.iloc[a:b] for a, b in zip(starts, bounds, strict=True)]


def _wait_for_version(client: httpx.Client, version: str, timeout: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if str(client.get("/v1/model").json().get("version")) == version:
            return time.monotonic() - start
        time.sleep(0.2)
    raise ServeError(f"the server did not pick up version {version} within {timeout:.0f}s")


@dataclass(frozen=True)
class DemoResult:
    project: Project
    windows: list[WindowResult]
    served_versions: list[str]
    promoted: list[str]
    final_version: str


def run_demo(folder: Path | None = None, port: int = 0, traffic_limit: int | None = None) -> DemoResult:
    """Run the demo; ``traffic_limit`` replays only the first N later sales (the tests use a slice)."""
    root = folder or Path(tempfile.mkdtemp(prefix="mloop-demo-"))
    heading(console, "[bold]mloop demo: Ames house prices")
    project, traffic = _write_project(root)
    if traffic_limit is not None:
        traffic = traffic.head(traffic_limit)
    console.print(f"project: {root}")

    heading(console, "1. train on 2006–2007 sales")
    with console.status("ingest → validate → train → register → gate…"):
        first = stages.run(project)
    console.print(
        f"version {first.version.version}: rmse {first.trained.metrics['rmse']:,.0f}, "
        f"mape {first.trained.metrics['mape']:.1%} on the last 20% of 2006–2007 → {first.decision.reason}"
    )

    heading(console, "2. serve the champion")
    server = Server(project.root / "mloop.yaml", port or _free_port())
    server.start()
    console.print(f"serving version {first.version.version} at {server.url} (docs: {server.url}/docs)")
    contract = load_contract(project.contract_path)
    features = [*contract.features, *contract.with_role("time")]
    window_size = project.config.monitor.window_size
    retrains: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            replay = Replay(client, features, contract.target)
            heading(console, "3. replay 2008–2010 sales as traffic, labels fed back")
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )
            with progress:
                task = progress.add_task("houses sold", total=len(traffic))
                for window in _windows(traffic, window_size):
                    for chunk in range(0, len(window), BATCH):
                        replay.send(window.iloc[chunk : chunk + BATCH])
                        progress.advance(task, min(BATCH, len(window) - chunk))
                    result = monitor(project, last=len(window))
                    replay.windows.append(result)
                    sold = window["Year_Sold"].astype(str) + "-" + window["Mo_Sold"].astype(str).str.zfill(2)
                    progress.console.print(
                        f"window {len(replay.windows)} ({sold.iloc[0]} → {sold.iloc[-1]}), version "
                        f"{result.version}: {result.drift.n_drifted} drifted features, live rmse "
                        f"{result.quality.get('rmse', float('nan')):,.0f}"
                        + (f" ({result.decay:+.1%} vs training)" if result.decay is not None else "")
                        + (
                            f", estimated before labels {result.estimated_quality['rmse']:,.0f}"
                            if "rmse" in result.estimated_quality
                            else ""
                        )
                    )
                    outcome = retrain(project, if_needed=True)
                    action = "—"
                    if outcome.version is not None:
                        action = f"v{outcome.version.version} " + ("promoted" if outcome.promoted else "rejected")
                    replay.rows.append(
                        [
                            str(len(replay.windows)),
                            f"{sold.iloc[0]} → {sold.iloc[-1]}",
                            result.version,
                            str(result.drift.n_drifted),
                            _together(result),
                            number(result.estimated_quality.get("rmse")),
                            number(result.quality.get("rmse")),
                            number(result.training_quality.get("rmse")),
                            f"{result.decay:+.0%}" if result.decay is not None else "",
                            action,
                        ]
                    )
                    if outcome.version is None:
                        continue
                    verdict = "promoted" if outcome.promoted else "rejected by the gate"
                    progress.console.print(
                        f"  [bold]retrained[/] ({'; '.join(outcome.decision.reasons)}) → version "
                        f"{outcome.version.version} {verdict}: {outcome.gate.reason if outcome.gate else ''}"
                    )
                    if outcome.promoted:
                        waited = _wait_for_version(client, outcome.version.version)
                        retrains.append(outcome.version.version)
                        progress.console.print(
                            f"  server now answers with version {outcome.version.version} "
                            f"(picked up in {waited:.1f}s, no restart)"
                        )
            final = client.get("/v1/model").json()
    finally:
        server.stop()
    _summary(project, replay, final, retrains)
    return DemoResult(project, replay.windows, replay.served_versions, retrains, str(final.get("version")))


def _together(result: WindowResult) -> str:
    """Whether the window's features drifted together (monitor.multivariate), and by which statistic."""
    if result.multivariate is None:
        return ""
    found = result.multivariate
    moved = [name for name, hit in (("PCA", found.reconstruction_drifted), ("classifier", found.auroc_drifted)) if hit]
    return ", ".join(moved) or "no"


def _summary(project: Project, replay: Replay, final: dict[str, Any], retrains: list[str]) -> None:
    heading(console, "4. summary")
    windows = new_table(
        "#",
        "sold",
        "served",
        "drifted",
        "together",
        "est. rmse",
        "live rmse",
        "train rmse",
        "decay",
        "retrain",
        title="monitoring windows",
    )
    for row in replay.rows:
        windows.add_row(*row)
    console.print(windows)
    table = new_table("version", "aliases", "rmse (own holdout)", "train rows", "gate", title="model versions")
    for v in list_versions(project):
        rmse = v.metric("rmse")
        table.add_row(
            v.version,
            ", ".join(v.aliases),
            number(rmse),
            v.tags.get("mloop.rows_train", ""),
            "passed" if '"promote": true' in v.tags.get("mloop.gate", "") else "rejected",
        )
    console.print(table)
    events = [e for e in audit.read(project.audit_log) if e["event"] in ("promote", "reject", "rollback")]
    for e in events:
        console.print(f"audit: {e['ts']} {e['event']} version {e['version']} — {e.get('reason', '')}")
    champion = alias_version(project, CHAMPION)
    report = write_report(project, project.workspace / "report.html")
    if retrains:
        console.print(
            f"[green]retrained champion: version {champion.version if champion else '?'} is served[/] "
            f"(the server answered with version {final.get('version')} at the end)"
        )
    else:
        console.print("[yellow]no retrained model beat the champion; the original champion is still served[/]")
    console.print("\nlook further:")
    console.print(f"  mloop -c {project.root / 'mloop.yaml'} ui   (the MLflow UI and the dashboard, Ctrl-C stops both)")
    console.print(f"  mlflow ui --backend-store-uri {project.tracking_uri}")
    console.print(f"  mloop -c {project.root / 'mloop.yaml'} models")
    console.print(f"  open {report}")


def main() -> None:
    try:
        run_demo()
    except MloopError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
