"""Streaming benchmark: `mloop stream` vs a naive consumer loop vs `mloop serve` over REST, same model, same events.

Trains the Ames pipeline once, as bench/serving.py does (a throwaway project in a temporary folder;
`--project` reuses one), and turns Ames houses sold from 2008 on into events: each is a JSON object of
the features the champion's contract wants (target and excluded columns dropped) with a `request_id`,
the houses cycled through in order. Then, one after the other, on the local Redis (127.0.0.1 only):

* ``stream`` — `--events` events (50,000; 20,000 with --quick) go into a fresh Redis stream, then
  `--consumers` (2, as many as the REST server's workers: one per core) `mloop stream --idle-exit 2
  --json --metrics-port 0` processes of one consumer group score them into a fresh sink. The figure is
  the events read by all of them over the time from the first event any of them read to the last batch
  any of them acknowledged (each summary's `first_event_at` / `last_ack_at`), and the sink must hold
  exactly one answer per event.
* ``naive`` — the loop a user writes without mloop: `mlflow.pyfunc.load_model("models:/NAME@champion")`
  once, then per event XREADGROUP COUNT 1, `model.predict(pd.DataFrame([record]))`, XADD the answer,
  XACK; bounded by `--naive-events` (2,000; 1,000 quick) and `--naive-seconds`.
* ``rest`` — `mloop serve` with `--workers` workers (2, bench/serving.py's default), started as
  bench/serving.py starts it, driven by `wrk` at 16 connections with single-record POSTs of the same
  houses for `--duration` seconds (10; 5 quick): requests/s = events/s.

Every process gets the same environment as bench/serving.py's servers (OMP_NUM_THREADS=1). The goals
(>= 20,000 events/s for the stream, >= 10x the naive loop) are reported as booleans; they do not change
the exit status. The Redis keys made (streams, `mloop:written:<stream>:*` markers) are deleted at the end.

    .venv/bin/python bench/streaming.py --quick    # about two and a half minutes
    .venv/bin/python bench/streaming.py            # about three and a half minutes

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from serving import BIN, LUA, _ames, _free_port, _project, _server, _wrk

from mloop.data.contract import load_contract
from mloop.project import Project
from mloop.serve.stream.consumer import StreamSettings

HOST = "127.0.0.1"
CONNECTIONS = 16
IDLE_EXIT_SECONDS = 2
PRODUCE_CHUNK = 1000
STREAM_TIMEOUT_SECONDS = 600
GOAL_EVENTS_PER_SECOND = 20_000
GOAL_VS_NAIVE = 10.0
PER_CONSUMER = ("read", "written", "dead_letters", "batches", "busy_seconds", "events_per_second")
# The consumer a user writes without mloop; argv: redis port, db, source, sink, model name, events, seconds.
NAIVE = """
import json, sys, time

import mlflow
import pandas as pd
import redis

port, db, source, sink, name, limit, seconds = sys.argv[1:]
r = redis.Redis(host="127.0.0.1", port=int(port), db=int(db))
r.xgroup_create(source, "naive", id="0", mkstream=True)
model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
version = mlflow.MlflowClient().get_model_version_by_alias(name, "champion").version
done, first, last = 0, None, None
while done < int(limit):
    reply = r.xreadgroup("naive", "naive-1", {source: ">"}, count=1, block=2000)
    if not reply:
        break
    entry_id, fields = reply[0][1][0]
    if first is None:
        first = time.perf_counter()
    record = json.loads(fields[b"data"])
    request_id = record.pop("request_id")
    prediction = model.predict(pd.DataFrame([record])).tolist()[0]
    answer = {"request_id": request_id, "model_version": version, "prediction": prediction}
    r.xadd(sink, {"request_id": request_id, "data": json.dumps(answer)})
    r.xack(source, "naive", entry_id)
    done += 1
    last = time.perf_counter()
    if last - first >= float(seconds):
        break
busy = (last - first) if done else 0.0
print(json.dumps({"events": done, "busy_seconds": busy, "events_per_second": done / busy if busy else None}))
"""


def _redis_uri(port: int, db: int, stream: str) -> str:
    return f"redis://{HOST}:{port}/{db}?stream={stream}"


def _produce(client: Any, stream: str, payloads: list[str]) -> None:
    for start in range(0, len(payloads), PRODUCE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[start : start + PRODUCE_CHUNK]:
            pipe.xadd(stream, {"data": payload})
        pipe.execute()


def _answer_ids(client: Any, stream: str) -> list[str]:
    """The request ids of the answers in ``stream``, read in pages."""
    ids: list[str] = []
    start = "-"
    while True:
        entries = client.xrange(stream, min=start, count=10_000)
        ids += [json.loads(fields[b"data"])["request_id"] for _, fields in entries]
        if len(entries) < 10_000:
            return ids
        start = "(" + entries[-1][0].decode()


def _clean(client: Any, streams: list[str]) -> int:
    """Deletes ``streams`` and their answers' markers; the number of keys deleted."""
    deleted = 0
    for stream in streams:
        markers = list(client.scan_iter(match=f"mloop:written:{stream}:*", count=10_000))
        for start in range(0, len(markers), 10_000):
            deleted += client.unlink(*markers[start : start + 10_000])
    return deleted + client.unlink(*streams)


def _run_streams(
    commands: list[list[str]], env: dict[str, str], cwd: Path, logs: Path
) -> tuple[list[dict[str, Any]], float]:
    """The consumers of one group (one `mloop stream … --json` each), started together and run to their end:
    their summaries and the wall time of them all."""
    started = time.monotonic()
    processes = []
    for index, command in enumerate(commands):
        with open(logs / f"stream-{index}.log", "w", encoding="utf-8") as stderr:
            processes.append(
                subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
            )
    summaries = []
    for index, process in enumerate(processes):
        try:
            out, _ = process.communicate(timeout=STREAM_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise SystemExit(f"mloop stream ran past {STREAM_TIMEOUT_SECONDS} s") from None
        if process.returncode != 0 or "{" not in out:
            tail = (logs / f"stream-{index}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"mloop stream exited with {process.returncode}:\n{out[-2000:]}\n{tail}")
        summaries.append(json.loads(out[out.index("{") :]))
    return summaries, time.monotonic() - started


def main() -> None:
    defaults = StreamSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events and a shorter REST run")
    parser.add_argument(
        "--project", type=Path, default=None, help="an existing project (its mloop.yaml) with a champion, not retrained"
    )
    parser.add_argument("--events", type=int, default=None, help="events for mloop stream (50,000; quick 20,000)")
    parser.add_argument("--naive-events", type=int, default=None, help="events for the naive loop (2,000; quick 1,000)")
    parser.add_argument("--naive-seconds", type=float, default=None, help="time cap of the naive loop (180; quick 90)")
    parser.add_argument("--duration", type=int, default=None, help="seconds of the REST run (default 10; quick 5)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="mloop stream --batch-size")
    parser.add_argument("--linger-ms", type=float, default=defaults.linger * 1000, help="mloop stream --linger-ms")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of mloop serve")
    parser.add_argument(
        "--consumers", type=int, default=2, help="mloop stream processes in the group (2, as many as serve's workers)"
    )
    parser.add_argument("--redis-port", type=int, default=6379, help=f"the Redis on {HOST}")
    parser.add_argument("--redis-db", type=int, default=0, help="its database number")
    args = parser.parse_args()
    events = args.events or (20_000 if args.quick else 50_000)
    naive_events = args.naive_events or (1_000 if args.quick else 2_000)
    naive_seconds = args.naive_seconds or (90.0 if args.quick else 180.0)
    seconds = args.duration or (5 if args.quick else 10)

    try:
        import redis
    except ImportError:
        raise SystemExit("the benchmark needs the redis package: pip install 'mloop[stream]'") from None

    client = redis.Redis(host=HOST, port=args.redis_port, db=args.redis_db, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise SystemExit(f"no Redis on {HOST}:{args.redis_port}: {exc}") from None
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; on Debian/Ubuntu: apt-get install wrk")
    run_id = f"mloop-bench-{uuid.uuid4().hex[:8]}"
    source, sink = f"{run_id}-events", f"{run_id}-answers"
    naive_source, naive_sink = f"{run_id}-naive-events", f"{run_id}-naive-answers"
    streams = [source, sink, f"{source}-dead", naive_source, naive_sink]
    ames = _ames()
    tmp = Path(tempfile.mkdtemp(prefix="mloop-bench-"))
    try:
        started = time.monotonic()
        print("loading the project" if args.project else "training the Ames project once", flush=True)
        project = (
            Project.load(args.project) if args.project else _project(tmp / "project", ames[ames["Year_Sold"] <= 2007])
        )
        features = load_contract(project.contract_path).features
        houses = ames[ames["Year_Sold"] >= 2008][features]
        records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in houses.to_dict("records")]
        payloads = [json.dumps({"request_id": f"ev-{i}", **records[i % len(records)]}) for i in range(events)]
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": project.tracking_uri}
        config = str(project.root / "mloop.yaml")

        # 1. mloop stream: `consumers` consumers of one group over a backlog of `events` events.
        print(f"producing {events:,} events into {source}", flush=True)
        _produce(client, source, payloads)
        source_uri, sink_uri = (_redis_uri(args.redis_port, args.redis_db, s) for s in (source, sink))
        stream_args = [
            "--source", source_uri, "--sink", sink_uri, "--batch-size", str(args.batch_size),
            "--linger-ms", str(args.linger_ms), "--idle-exit", str(IDLE_EXIT_SECONDS), "--metrics-port", "0", "--json",
        ]  # fmt: skip
        commands = [
            [str(BIN / "mloop"), "-c", config, "stream", *stream_args, "--consumer", f"bench-{index}"]
            for index in range(args.consumers)
        ]
        print(
            f"{args.consumers} x mloop stream --batch-size {args.batch_size} --linger-ms {args.linger_ms:g}", flush=True
        )
        summaries, stream_wall = _run_streams(commands, env, tmp, tmp)
        answered = _answer_ids(client, sink)
        expected = {f"ev-{i}" for i in range(events)}
        if len(answered) != events or set(answered) != expected:
            raise SystemExit(
                f"the sink holds {len(answered)} answers ({len(set(answered) & expected)} of the {events} events); "
                f"mloop stream said {summaries}"
            )
        working = [s for s in summaries if s["read"]]
        busy = max(s["last_ack_at"] for s in working) - min(s["first_event_at"] for s in working)
        read = sum(s["read"] for s in summaries)
        stream_eps = round(read / busy, 1)
        print(
            f"stream  {stream_eps:10.1f} events/s  ({read:,} read by {args.consumers} consumer(s) "
            f"{[s['read'] for s in summaries]}, {sum(s['batches'] for s in summaries):,} batches in {busy:.3f} s; "
            f"processes {stream_wall:.1f} s)",
            flush=True,
        )

        # 2. The naive loop over the first `naive_events` of the same events.
        print(f"naive loop: up to {naive_events:,} events or {naive_seconds:g} s", flush=True)
        _produce(client, naive_source, payloads[:naive_events])
        naive_command = [
            sys.executable, "-c", NAIVE, str(args.redis_port), str(args.redis_db), naive_source, naive_sink,
            project.name, str(naive_events), str(naive_seconds),
        ]  # fmt: skip
        done = subprocess.run(
            naive_command, env=env, cwd=tmp, capture_output=True, text=True, timeout=naive_seconds + 300
        )
        if done.returncode != 0:
            raise SystemExit(f"the naive loop exited with {done.returncode}:\n{done.stderr[-3000:]}")
        naive = json.loads(done.stdout.strip().splitlines()[-1])
        naive["answers_in_sink"] = client.xlen(naive_sink)
        if naive["answers_in_sink"] != naive["events"] or not naive["events"]:
            raise SystemExit(f"the naive loop's sink holds {naive['answers_in_sink']} answers, not {naive['events']}")
        naive_eps = float(naive["events_per_second"])
        print(
            f"naive   {naive_eps:10.1f} events/s  ({naive['events']:,} events in {naive['busy_seconds']:.1f} s)",
            flush=True,
        )

        # 3. mloop serve driven by wrk with the same houses, one per request.
        port = _free_port()
        url, ready = f"http://{HOST}:{port}/v1/predict", f"http://{HOST}:{port}/ready"
        body_file = tmp / "rest.jsonl"
        body_file.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        script = tmp / "rest.lua"
        script.write_text(LUA % body_file, encoding="utf-8")
        serve = [str(BIN / "mloop"), "-c", config, "serve", "--host", HOST, "--port", str(port),
                 "--workers", str(args.workers)]  # fmt: skip
        print(f"mloop serve --workers {args.workers}, wrk c={CONNECTIONS} for {seconds} s", flush=True)
        with _server("mloop", serve, env, tmp, ready, tmp):
            check = httpx.post(url, content=json.dumps(records[0]), headers={"content-type": "application/json"})
            if check.status_code != 200:
                raise SystemExit(f"mloop serve answered {check.status_code}: {check.text[:500]}")
            _wrk(url, script, CONNECTIONS, 1, 1)  # warm up every worker
            rest = _wrk(url, script, CONNECTIONS, seconds, threads=1)
        print(
            f"rest    {rest['rps']:10.1f} events/s  (p50 {rest['p50_ms']:.2f} ms, p99 {rest['p99_ms']:.2f} ms)",
            flush=True,
        )

        vs_naive, vs_rest = stream_eps / naive_eps, stream_eps / rest["rps"]
        result = {
            "benchmark": "streaming",
            "cpus": os.cpu_count(),
            "events_per_second": {"stream": stream_eps, "naive": round(naive_eps, 1), "rest": rest["rps"]},
            "ratios": {"stream_vs_naive": round(vs_naive, 1), "stream_vs_rest": round(vs_rest, 2)},
            "goals_met": {
                f"stream_at_least_{GOAL_EVENTS_PER_SECOND}_events_per_second": stream_eps >= GOAL_EVENTS_PER_SECOND,
                f"stream_at_least_{GOAL_VS_NAIVE:g}x_naive": vs_naive >= GOAL_VS_NAIVE,
            },
            "stream": {
                "events": events,
                "consumers": args.consumers,
                "batch_size": args.batch_size,
                "linger_ms": args.linger_ms,
                "answers_in_sink": len(answered),
                "busy_seconds": round(busy, 3),
                "process_seconds": round(stream_wall, 1),
                "per_consumer": [{k: s[k] for k in PER_CONSUMER} for s in summaries],
            },
            "naive": {k: round(v, 3) if isinstance(v, float) else v for k, v in naive.items()},
            "rest": {"workers": args.workers, "connections": CONNECTIONS, "seconds": seconds, **rest},
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(result))
    finally:
        try:
            _clean(client, streams)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
