"""Serving benchmark: a constant FastAPI endpoint vs `mlflow models serve` vs `mloop serve`, same model.

Trains the Ames pipeline once (a throwaway project in a temporary folder), starts each server on
127.0.0.1 with the same number of uvicorn workers, checks it answers, then drives it with `wrk`
(Debian package `wrk`) and a Lua script cycling through single-house POST bodies built from Ames rows,
at 16 and 64 concurrent connections. mloop runs with its prediction log on. Traffic only goes to
127.0.0.1 and every run is bounded by `--duration`.

    .venv/bin/python bench/serving.py --quick      # about a minute
    .venv/bin/python bench/serving.py              # 20 s per server and load level

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
from contextlib import contextmanager
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
def _server(name: str, command: list[str], env: dict[str, str], cwd: Path, url: str, logs: Path) -> Iterator[None]:
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
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; on Debian/Ubuntu: apt-get install wrk")
    seconds = args.duration or (5 if args.quick else 20)
    levels = [int(c) for c in args.connections.split(",")]

    ames = _ames()
    tmp = Path(tempfile.mkdtemp(prefix="mloop-bench-"))
    try:
        started = time.monotonic()
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
        ports = {name: _free_port() for name in bodies}
        w = str(args.workers)
        servers = {
            "constant": (
                [str(BIN / "uvicorn"), "constant_app:app", "--host", "127.0.0.1", "--port", str(ports["constant"]),
                 "--workers", w, "--log-level", "warning", "--no-access-log"],
                f"http://127.0.0.1:{ports['constant']}/predict",
                f"http://127.0.0.1:{ports['constant']}/docs",
            ),
            "mlflow": (
                [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{project.name}@champion", "--env-manager",
                 "local", "-h", "127.0.0.1", "-p", str(ports["mlflow"]), "-w", w],
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
        results: dict[str, Any] = {}
        for name, (command, url, ready) in servers.items():
            body_file = tmp / f"{name}.jsonl"
            body_file.write_text("\n".join(bodies[name]) + "\n", encoding="utf-8")
            script = tmp / f"{name}.lua"
            script.write_text(LUA % body_file, encoding="utf-8")
            with _server(name, command, env, tmp, ready, tmp):
                check = httpx.post(url, content=bodies[name][0], headers={"content-type": "application/json"})
                if check.status_code != 200:
                    raise SystemExit(f"{name} answered {check.status_code}: {check.text[:500]}")
                _wrk(url, script, levels[0], 1, 1)  # warm up every worker
                for connections in levels:
                    figures = _wrk(url, script, connections, seconds, threads=1)
                    results[f"{name}_c{connections}"] = figures
                    print(
                        f"{name:9s} c={connections:3d}  {figures['rps']:9.1f} req/s  p50 {figures['p50_ms']:8.2f} ms"
                        f"  p99 {figures['p99_ms']:8.2f} ms  non-2xx {figures['non_2xx']:.0f}",
                        flush=True,
                    )
        from mloop.data.predictions import PredictionStore

        logged = PredictionStore(project.predictions_db).count()
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
            "mloop_prediction_log_rows": logged,
            "mloop_requests": sum(results[f"mloop_c{c}"]["requests"] for c in levels),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
