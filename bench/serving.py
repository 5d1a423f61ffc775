"""Serving benchmark: a constant FastAPI endpoint vs MLflow's scoring server vs `mloop serve`, same model.

Trains the Ames pipeline once (a throwaway project in a temporary folder; `--project` reuses one),
starts the three servers on 127.0.0.1 with the same number of uvicorn workers and the same launcher
(mloop's: uvicorn's own multi-worker socket leaves Nagle's algorithm on, which adds ~40 ms to every
answer of every server; `--mlflow-cli` starts MLflow with `mlflow models serve` as shipped instead),
checks each answers, then drives them with `wrk` (Debian package `wrk`) and a Lua script cycling
through single-house POST bodies built from Ames rows, at 16 and 64 concurrent connections. The runs
are interleaved, round after round, so a change in the machine's load hits every server alike; the
median of the rounds is reported, with each server's CPU time per request (process tree, /proc).
mloop runs with its prediction log on; the rows it logged are counted. Traffic only goes to
127.0.0.1 and every run is bounded by `--duration`.

    .venv/bin/python bench/serving.py --quick      # 5 s runs, 2 rounds: about three minutes
    .venv/bin/python bench/serving.py              # 20 s runs, 3 rounds

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
AMES = (ROOT / "src" / "mloop" / "examples" / "ames.csv.gz", ROOT.parent / "shared" / "data" / "ames.csv.gz")
BIN = Path(sys.executable).parent
BODIES = 200  # distinct houses the Lua script cycles through
CONSTANT_APP = """
import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(orjson.dumps({"prediction": 180000.0}), media_type="application/json")
"""
# Every server runs under the same uvicorn launcher as `mloop serve` (same workers, same socket setup:
# uvicorn's own multi-worker socket leaves Nagle's algorithm on, see mloop.serve.main.tcp_socket).
LAUNCHER = """
import sys

import uvicorn

from mloop.serve.main import WORKER_STARTUP_SECONDS, run_uvicorn

if __name__ == "__main__":  # workers are spawned: they import this file again
    app, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, workers=workers, log_level="warning", access_log=False,
        timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,  # as mloop: a busy machine must not restart workers
    )
    run_uvicorn(config)
"""
LUA = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ames() -> pd.DataFrame:
    for path in AMES:
        if path.is_file():
            return pd.read_csv(path)
    raise SystemExit(f"the Ames data is not at any of {', '.join(map(str, AMES))}")


def _project(root: Path, frame: pd.DataFrame) -> Any:
    from mloop.pipeline import stages
    from mloop.project import Project

    root.mkdir(parents=True)
    frame.to_csv(root / "train.csv", index=False)
    (root / "mloop.yaml").write_text(
        "name: ames-bench\ndata: {source: train.csv, target: Sale_Price, time_column: Year_Sold}\n", encoding="utf-8"
    )
    project = Project.load(root / "mloop.yaml")
    result = stages.run(project)
    if not result.decision.promote:
        raise SystemExit(f"the benchmark model was not promoted: {result.decision}")
    return project


@contextmanager
def _server(
    name: str, command: list[str], env: dict[str, str], cwd: Path, url: str, logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log_path = logs / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not become ready:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in family]
        family.update(children)
        frontier.extend(children)
    return sum(cpu.get(p, 0.0) for p in family)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk(url: str, script: Path, connections: int, seconds: int, threads: int) -> dict[str, float]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    out = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, flags=re.MULTILINE))
    if set(percentiles) != {"50", "99"}:
        raise SystemExit(f"cannot read wrk's latency distribution:\n{out}")
    requests = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "requests": float(requests.group(1)) if requests else 0.0,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per run (about a minute in all)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per server and load level")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of every server")
    parser.add_argument("--connections", default="16,64", help="concurrent clients, comma-separated")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="runs per server and load level, interleaved across servers; the median is reported (default 3, quick 2)",
    )
    parser.add_argument(
        "--mlflow-cli",
        action="store_true",
        help="start MLflow with `mlflow models serve` itself (its uvicorn socket adds ~40 ms per answer)",
    )
    parser.add_argument(
        "--project", type=Path, default=None, help="an existing project (its mloop.yaml) with a champion, not retrained"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; on Debian/Ubuntu: apt-get install wrk")
    seconds = args.duration or (5 if args.quick else 20)
    rounds = args.rounds or (2 if args.quick else 3)
    levels = [int(c) for c in args.connections.split(",")]

    ames = _ames()
    tmp = Path(tempfile.mkdtemp(prefix="mloop-bench-"))
    try:
        started = time.monotonic()
        if args.project is not None:
            from mloop.project import Project

            project = Project.load(args.project)
        else:
            project = _project(tmp / "project", ames[ames["Year_Sold"] <= 2007])
        from mloop.data.contract import load_contract

        features = load_contract(project.contract_path).features
        houses = ames[ames["Year_Sold"] >= 2008].head(BODIES)[features]
        records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in houses.to_dict("records")]
        bodies = {
            "constant": [json.dumps(r) for r in records],
            "mloop": [json.dumps(r) for r in records],
            "mlflow": [json.dumps({"dataframe_records": [r]}) for r in records],
        }
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # mlflow starts `uvicorn` from PATH
        env = {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": project.tracking_uri}
        (tmp / "constant_app.py").write_text(CONSTANT_APP, encoding="utf-8")
        (tmp / "launch.py").write_text(LAUNCHER, encoding="utf-8")
        # MLflow's scoring app, exactly as `mlflow models serve --env-manager local` starts it: its command
        # is `uvicorn --workers N mlflow.pyfunc.scoring_server.app:app` with the variables of get_cmd.
        import mlflow
        from mlflow.pyfunc.scoring_server import get_cmd

        from mloop.tracking.store import connect

        connect(project)
        model_dir = mlflow.artifacts.download_artifacts(f"models:/{project.name}@champion", dst_path=str(tmp / "model"))
        mlflow_env = {**env, **{k: v for k, v in get_cmd(model_dir)[1].items() if k not in os.environ}}
        ports = {name: _free_port() for name in bodies}
        w = str(args.workers)
        servers = {
            "constant": (
                [sys.executable, "launch.py", "constant_app:app", str(ports["constant"]), w],
                f"http://127.0.0.1:{ports['constant']}/predict",
                f"http://127.0.0.1:{ports['constant']}/docs",
            ),
            "mlflow": (
                [sys.executable, "launch.py", "mlflow.pyfunc.scoring_server.app:app", str(ports["mlflow"]), w],
                f"http://127.0.0.1:{ports['mlflow']}/invocations",
                f"http://127.0.0.1:{ports['mlflow']}/ping",
            ),
            "mloop": (
                [str(BIN / "mloop"), "-c", str(project.root / "mloop.yaml"), "serve", "--host", "127.0.0.1",
                 "--port", str(ports["mloop"]), "--workers", w],
                f"http://127.0.0.1:{ports['mloop']}/v1/predict",
                f"http://127.0.0.1:{ports['mloop']}/ready",
            ),
        }  # fmt: skip
        if args.mlflow_cli:
            servers["mlflow"] = (
                [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{project.name}@champion", "--env-manager",
                 "local", "-h", "127.0.0.1", "-p", str(ports["mlflow"]), "-w", w],
                *servers["mlflow"][1:],
            )  # fmt: skip
        from mloop.data.predictions import PredictionStore

        logged_before = PredictionStore(project.predictions_db).count()
        scripts: dict[str, Path] = {}
        runs: dict[str, list[dict[str, float]]] = {}
        with ExitStack() as stack:
            # Every server is up for the whole benchmark (idle ones use no CPU) and the runs are interleaved,
            # round by round, so a change in the machine's load hits every server alike.
            processes = {}
            for name, (command, url, ready) in servers.items():
                body_file = tmp / f"{name}.jsonl"
                body_file.write_text("\n".join(bodies[name]) + "\n", encoding="utf-8")
                scripts[name] = tmp / f"{name}.lua"
                scripts[name].write_text(LUA % body_file, encoding="utf-8")
                server_env = mlflow_env if name == "mlflow" else env
                processes[name] = stack.enter_context(_server(name, command, server_env, tmp, ready, tmp))
                check = httpx.post(url, content=bodies[name][0], headers={"content-type": "application/json"})
                if check.status_code != 200:
                    raise SystemExit(f"{name} answered {check.status_code}: {check.text[:500]}")
                _wrk(url, scripts[name], levels[0], 1, 1)  # warm up every worker
            for round_ in range(rounds):
                for connections in levels:
                    for name, (_, url, _) in servers.items():
                        cpu_before = _tree_cpu_seconds(processes[name].pid)
                        figures = _wrk(url, scripts[name], connections, seconds, threads=1)
                        cpu = _tree_cpu_seconds(processes[name].pid) - cpu_before
                        figures["server_cpu_us_per_request"] = round(cpu / max(figures["requests"], 1) * 1e6, 1)
                        runs.setdefault(f"{name}_c{connections}", []).append(figures)
                        print(
                            f"round {round_ + 1} {name:9s} c={connections:3d}  {figures['rps']:9.1f} req/s"
                            f"  p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms"
                            f"  server CPU {figures['server_cpu_us_per_request']:8.1f} us/req"
                            f"  non-2xx {figures['non_2xx']:.0f}",
                            flush=True,
                        )
        results: dict[str, Any] = {
            key: {field: round(_median([run[field] for run in values]), 2) for field in values[0]}
            for key, values in runs.items()
        }
        logged = PredictionStore(project.predictions_db).count() - logged_before
        ratios = {}
        for connections in levels:
            mloop_rps = results[f"mloop_c{connections}"]["rps"]
            ratios[f"mloop_vs_mlflow_c{connections}"] = round(mloop_rps / results[f"mlflow_c{connections}"]["rps"], 2)
            ratios[f"mloop_vs_constant_c{connections}"] = round(
                mloop_rps / results[f"constant_c{connections}"]["rps"], 3
            )
        summary = {
            "benchmark": "serving",
            "seconds_per_run": seconds,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "load_generator": "wrk -t1 --latency, Lua POST script, single Ames records",
            "results": results,
            "ratios": ratios,
            "rounds": rounds,
            "mloop_prediction_log_rows": logged,
            "mloop_requests_answered": sum(
                run["requests"] for key, v in runs.items() if key.startswith("mloop") for run in v
            ),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
