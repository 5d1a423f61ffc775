"""Soak benchmark: `mloop serve` under mixed traffic for half an hour, with the SQLite and then the PostgreSQL log.

Trains the Ames pipeline once, as bench/serving.py does (a throwaway project in a temporary folder), and
registers a second version of it (another seed and learning rate), so the `champion` alias has somewhere
to move. Then, for each prediction log in turn (`--logs`: the project's SQLite file, then a PostgreSQL
database created for the run on `--pg-admin-url`'s server and dropped after it), `mloop serve --workers 2`
is started as bench/serving.py starts it and driven for `--minutes` (30; 10 with --quick, per log) by an
open-loop asyncio load generator on 127.0.0.1 at `--rate` requests/s (200; its own small HTTP/1.1 client,
~0.3 ms of CPU a request where httpx took 1.9 ms: on two cores the generator must not be what is measured),
with this mix:

* `/v1/predict` with one house (50%) and with a batch of 50 (5%); MLflow's `/invocations` with a
  `dataframe_split` of 5 houses (10%) and CSV with a header (8%); the Open Inference Protocol's
  `/v2/models/{name}/infer` with 3 houses (10%); `/v1/feedback` with the true prices of up to 5
  records answered at least 3 s before (12%);
* injected errors (5%), counted apart: invalid JSON, a string for a number, a truncated MLflow body, a CSV
  with text in a number column, a label for an unknown request id. Each must get its 4xx.

Meanwhile `mloop promote VERSION --force --reason soak` moves `champion` to the other version every minute
(the server must hot-reload it: the versions in the answers and the server's "serving … version" lines
show each reload) and `mloop monitor` runs every 2 minutes, half a minute off the moves (exit 0, or 9: no
traffic for that version yet). Every 10 s bucket records p50/p99 latency of the good requests (the
client's clock, from send to the whole answer read), counts per outcome, records answered, the CPU of the
server, of each worker and of the whole machine, and the resident memory of each uvicorn worker (/proc);
they go to a CSV beside the plot of latency, memory and CPU over time (`--plot`, docs/img/soak.png). Once
traffic stops, each worker's /metrics is read: server-side time per endpoint, answers per status, and the
prediction log's dropped/spilled counters.

The checks, reported as booleans (they do not change the exit status): no error other than the injected
ones (no 5xx, no unexpected 4xx, no transport error) and every injected one its 4xx; prediction-log rows
written during the run = good scoring records answered (records, not requests: a batch of 50 is 50 rows;
feedback and injected requests excluded); worker RSS at the end (median of the last 10% of the buckets)
at most 10% above that right after warm-up (the first 20% of the run; median of the next 10%); every
alias move seen in the answers; every monitor run exits 0 or 9; no worker restarted; no log row dropped
(`mloop_prediction_log_dropped_total`). Traffic only goes to 127.0.0.1, and every run is
bounded by `--minutes`.

    .venv/bin/python bench/soak.py --quick         # 10 min per log, about 21 minutes in all
    .venv/bin/python bench/soak.py                 # 30 min per log, about an hour
    .venv/bin/python bench/soak.py --minutes 1 --move-every 20 --monitor-every 30   # a smoke run

The last line printed is one JSON object with every figure and check.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from serving import BIN, ROOT, _ames, _free_port, _project, _server, _tree_cpu_seconds

HOST = "127.0.0.1"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BUCKET_SECONDS = 10
WARMUP_FRACTION = 0.2  # the first 20% of a run is warm-up
WINDOW_FRACTION = 0.1  # RSS is compared as medians over 10% of the buckets
MAX_RSS_GROWTH = 0.10
FEEDBACK_AGE_SECONDS = 3.0  # labels go to records answered at least this long ago
FEEDBACK_ITEMS = 5
BATCH_RECORDS, SPLIT_RECORDS, CSV_RECORDS, V2_RECORDS = 50, 5, 5, 3
REQUEST_TIMEOUT_SECONDS = 30.0  # longer than any server-side wait (SQLite's busy timeout is 10 s)
SUBPROCESS_TIMEOUT_SECONDS = 300.0
NO_TRAFFIC_EXIT_CODE = 9  # `mloop monitor`: MonitorError, the prediction log has no rows for the version yet
BODIES_PER_KIND = 200
# Share of the requests of each kind (smooth weighted round-robin, so the mix is exact and repeatable).
MIX = {"predict": 50, "batch": 5, "split": 10, "csv": 8, "v2": 10, "feedback": 12, "bad": 5}
SCORING = ("predict", "batch", "split", "csv", "v2")
KIND_LABELS = {
    "predict": "/v1/predict, 1 record",
    "batch": f"/v1/predict, {BATCH_RECORDS} records",
    "split": f"/invocations dataframe_split, {SPLIT_RECORDS} records",
    "csv": f"/invocations CSV, {CSV_RECORDS} records",
    "v2": f"/v2/models/NAME/infer, {V2_RECORDS} records",
    "feedback": f"/v1/feedback, up to {FEEDBACK_ITEMS} labels",
}
RELOAD_LINE = re.compile(r"serving \S+ version (\S+) \(was (\S+)\)")
STARTED_LINE = re.compile(r"Started server process \[(\d+)\]")


@dataclass(frozen=True)
class Body:
    """One prepared request: where it goes, its bytes, and the records and labels it carries."""

    kind: str
    path: str
    content: bytes
    content_type: str
    labels: tuple[float, ...] = ()
    expect: int | None = None  # the status an injected error must get


@dataclass
class Bucket:
    """What happened to the requests sent in one 10 s bucket, and the server as it was at its end."""

    latencies: list[float] = field(default_factory=list)  # seconds, good requests answered 2xx
    single: list[float] = field(default_factory=list)  # the single-record /v1/predict ones among them
    outcomes: Counter[str] = field(default_factory=Counter)
    records: int = 0
    rss_workers_mb: list[float] = field(default_factory=list)
    cpu_workers_pct: list[float] = field(default_factory=list)  # each worker's, in the order of their pids
    machine_busy_pct: float = 0.0  # all cores together, 100% = every core busy
    postgres_cpu_pct: float = 0.0
    rss_parent_mb: float = 0.0
    server_cpu_pct: float = 0.0
    moves: int = 0
    monitors: int = 0


@dataclass
class Soak:
    """The state of one soak run: buckets, per-kind latencies, versions answered, events, errors."""

    buckets: list[Bucket]
    kinds: dict[str, list[float]] = field(default_factory=dict)
    versions: list[tuple[float, str]] = field(default_factory=list)  # (answered at, model_version)
    pool: deque[tuple[float, str, float]] = field(default_factory=lambda: deque(maxlen=50_000))
    moves: list[dict[str, Any]] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    labels_attached: int = 0
    sent: int = 0
    behind_seconds: float = 0.0
    worker_pids: set[int] = field(default_factory=set)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    content: bytes


class TransportError(Exception):
    """The connection failed, closed mid-answer or timed out."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.last_used = reader, writer, time.perf_counter()

    def close(self) -> None:
        self.writer.close()


class Client:
    """A small HTTP/1.1 keep-alive client on asyncio streams: POSTs only, a pool of at most ``size``
    connections, each dropped after ``idle_expiry`` seconds unused (before uvicorn's 5 s keep-alive timeout
    closes it under a request). httpx costs ~1.9 ms of client CPU per request on this machine, this ~0.2 ms:
    on two shared cores the load generator must not be what is measured."""

    def __init__(self, host: str, port: int, size: int, timeout: float, idle_expiry: float = 2.0) -> None:
        self.host, self.port, self.timeout, self.idle_expiry = host, port, timeout, idle_expiry
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if time.perf_counter() - connection.last_used < self.idle_expiry and not connection.reader.at_eof():
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def post(self, path: str, content: bytes, content_type: str) -> Answer:
        return await self.request("POST", path, content, content_type)

    async def request(self, method: str, path: str, content: bytes = b"", content_type: str = "") -> Answer:
        kind = f"Content-Type: {content_type}\r\n" if content_type else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{kind}Content-Length: {len(content)}\r\n\r\n"
        ).encode()
        async with self._slots:
            connection: _Connection | None = None
            try:
                async with asyncio.timeout(self.timeout):
                    connection = await self._connection()
                    connection.writer.write(head + content)
                    answer = await self._read(connection.reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                if connection is not None:
                    connection.close()
                raise TransportError(f"{type(exc).__name__}: {exc}") from None
            if answer.headers.get("connection", "").lower() == "close":
                connection.close()
            else:
                connection.last_used = time.perf_counter()
                self._idle.append(connection)
            return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Answer:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return Answer(status, headers, await reader.readexactly(int(headers["content-length"])))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")  # no trailers are sent
            return Answer(status, headers, b"".join(chunks))
        return Answer(status, headers, b"")

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _record(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): (None if pd.isna(v) else v) for k, v in values.items()}


def _bodies(
    houses: pd.DataFrame, features: list[str], dtypes: Mapping[str, str], target: str, name: str
) -> dict[str, list[Body]]:
    """``BODIES_PER_KIND`` prepared requests per kind, cycling through ``houses`` in order."""
    frame = houses[features]
    labels = houses[target].astype(float).tolist()
    records = [_record(r) for r in frame.to_dict("records")]
    n = len(records)

    def chunk(start: int, size: int) -> tuple[list[int], list[dict[str, Any]]]:
        rows = [(start + i) % n for i in range(size)]
        return rows, [records[i] for i in rows]

    v2_type = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
    json_type = "application/json"
    out: dict[str, list[Body]] = {kind: [] for kind in SCORING}
    for b in range(BODIES_PER_KIND):
        out["predict"].append(Body("predict", "/v1/predict", orjson.dumps(records[b % n]), json_type, (labels[b % n],)))
        rows, chunk_records = chunk(b * BATCH_RECORDS, BATCH_RECORDS)
        out["batch"].append(
            Body("batch", "/v1/predict", orjson.dumps(chunk_records), json_type, tuple(labels[i] for i in rows))
        )
        rows, chunk_records = chunk(b * SPLIT_RECORDS + 7, SPLIT_RECORDS)
        split = {"dataframe_split": {"columns": features, "data": [[r[f] for f in features] for r in chunk_records]}}
        out["split"].append(
            Body("split", "/invocations", orjson.dumps(split), json_type, tuple(labels[i] for i in rows))
        )
        rows, _ = chunk(b * CSV_RECORDS + 11, CSV_RECORDS)
        text = frame.iloc[rows].to_csv(index=False).encode()
        out["csv"].append(Body("csv", "/invocations", text, "text/csv", tuple(labels[i] for i in rows)))
        rows, chunk_records = chunk(b * V2_RECORDS + 13, V2_RECORDS)
        v2 = {
            "inputs": [
                {"name": f, "shape": [V2_RECORDS], "datatype": v2_type.get(dtypes[f], "BYTES"),
                 "data": [r[f] for r in chunk_records]}
                for f in features
            ]
        }  # fmt: skip
        out["v2"].append(
            Body("v2", f"/v2/models/{name}/infer", orjson.dumps(v2), json_type, tuple(labels[i] for i in rows))
        )
    wrong_type = dict(records[0])
    number = next(f for f in features if dtypes[f] in ("integer", "float"))
    wrong_type[number] = "a lot"
    bad_csv = frame.iloc[:2].copy().astype(object)
    bad_csv.iloc[1, features.index(number)] = "a lot"
    out["bad"] = [
        Body("bad", "/v1/predict", b'{"Lot_Area": 8450,', json_type, expect=422),  # invalid JSON
        Body("bad", "/v1/predict", orjson.dumps(wrong_type), json_type, expect=422),  # a string for a number
        Body("bad", "/invocations", b'{"dataframe_split": {"columns": [', json_type, expect=422),  # truncated
        Body("bad", "/invocations", bad_csv.to_csv(index=False).encode(), "text/csv", expect=400),  # text in numbers
        Body(
            "bad",
            "/v1/feedback",
            orjson.dumps({"request_id": "00000000-0000-7000-8000-000000000000", "label": 1.0}),
            json_type,
            expect=404,
        ),  # a label for a request id no one was given
    ]
    return out


def _schedule(weights: dict[str, int]) -> Iterator[str]:
    """The kinds in the proportions of ``weights``, evenly interleaved (smooth weighted round-robin)."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    while True:
        for kind, weight in weights.items():
            current[kind] += weight
        chosen = max(current, key=lambda k: current[k])
        current[chosen] -= total
        yield chosen


def _answer(kind: str, response: Answer) -> tuple[list[str], str | None]:
    """The request ids an answer carries and the model version it names (None where it names none)."""
    if kind in ("split", "csv"):
        header = response.headers.get("x-request-ids", "")
        return (header.split(",") if header else []), None
    data = orjson.loads(response.content)
    if kind == "predict":
        return [data["request_id"]], data["model_version"]
    if kind == "batch":
        return list(data["request_ids"]), data["model_version"]
    return data["parameters"]["request_ids"].split(","), data["model_version"]


def _children() -> dict[int, list[int]]:
    """Each process's children, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def _workers(server: int) -> list[int]:
    """uvicorn's worker processes under ``server`` (spawned by multiprocessing), not its resource tracker."""
    children, found, frontier = _children(), [], [server]
    while frontier:
        for child in children.get(frontier.pop(), []):
            frontier.append(child)
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(child)
            except OSError:
                continue
    return sorted(found)


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    values = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def _postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on the machine (this run's and anyone else's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _cpu_of(int(entry.name))
            except OSError:
                continue
    return total


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a process (/proc/PID/statm), MB; None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES / 2**20
    except (OSError, IndexError, ValueError):
        return None


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


async def _send(client: Client, soak: Soak, body: Body, start: float) -> None:
    sent = time.perf_counter()
    bucket = soak.buckets[min(int((sent - start) // BUCKET_SECONDS), len(soak.buckets) - 1)]
    try:
        response = await client.post(body.path, body.content, body.content_type)
    except TransportError as exc:
        bucket.outcomes["transport"] += 1
        if len(soak.unexpected) < 50:
            soak.unexpected.append({"t": round(sent - start, 1), "kind": body.kind, "path": body.path,
                                    "error": str(exc)})  # fmt: skip
        return
    latency = time.perf_counter() - sent
    status = response.status
    if body.kind == "bad":
        soak.injected[f"{body.path} {body.expect} -> {status}"] += 1
        bucket.outcomes["injected_as_expected" if status == body.expect else "injected_other"] += 1
        return
    if not 200 <= status < 300:
        bucket.outcomes["5xx" if status >= 500 else "unexpected_4xx"] += 1
        if len(soak.unexpected) < 50:
            soak.unexpected.append({"t": round(sent - start, 1), "kind": body.kind, "path": body.path,
                                    "status": status, "request": body.content[:300].decode(errors="replace"),
                                    "response": response.content[:500].decode(errors="replace")})  # fmt: skip
        return
    bucket.outcomes["ok"] += 1
    bucket.latencies.append(latency)
    soak.kinds.setdefault(body.kind, []).append(latency)
    if body.kind == "predict":
        bucket.single.append(latency)
    if body.kind == "feedback":
        soak.labels_attached += int(orjson.loads(response.content).get("attached", 0))
        return
    ids, version = _answer(body.kind, response)
    bucket.records += len(ids)
    done = time.perf_counter() - start
    if version is not None:
        soak.versions.append((done, version))
    soak.pool.extend((done, request_id, label) for request_id, label in zip(ids, body.labels, strict=True))


def _feedback(soak: Soak, now: float) -> Body | None:
    """Labels for up to ``FEEDBACK_ITEMS`` records answered at least ``FEEDBACK_AGE_SECONDS`` ago."""
    items: list[dict[str, Any]] = []
    while soak.pool and len(items) < FEEDBACK_ITEMS and soak.pool[0][0] <= now - FEEDBACK_AGE_SECONDS:
        _, request_id, label = soak.pool.popleft()
        items.append({"request_id": request_id, "label": label})
    if not items:
        return None
    return Body("feedback", "/v1/feedback", orjson.dumps(items), "application/json")


async def _command(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SUBPROCESS_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        return (
            -9,
            out.decode(errors="replace"),
            "timed out\n" + err.decode(errors="replace"),
            SUBPROCESS_TIMEOUT_SECONDS,
        )
    return (
        process.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.perf_counter() - started,
    )


async def _mover(soak: Soak, config: str, versions: list[str], current: str, env: dict[str, str], cwd: Path,
                 start: float, seconds: float, every: float) -> None:  # fmt: skip
    """Moves `champion` to the other version every ``every`` seconds, with the real CLI."""
    k = 1
    while k * every < seconds:
        await asyncio.sleep(max(0.0, start + k * every - time.perf_counter()))
        target = versions[1 - versions.index(current)]
        began = time.perf_counter() - start
        rc, out, err, took = await _command(
            [str(BIN / "mloop"), "-c", config, "promote", target, "--force", "--reason", "soak", "--json"], env, cwd
        )
        ended = time.perf_counter() - start
        soak.buckets[min(int(began // BUCKET_SECONDS), len(soak.buckets) - 1)].moves += 1
        soak.moves.append({"t": round(began, 1), "done": round(ended, 1), "to": target, "from": current, "rc": rc,
                           "seconds": round(took, 2), "error": err[-1000:] if rc else ""})  # fmt: skip
        if rc == 0:
            current = target
        k += 1


async def _monitor(soak: Soak, config: str, env: dict[str, str], cwd: Path, start: float, seconds: float,
                   every: float, offset: float) -> None:  # fmt: skip
    """Runs `mloop monitor --json` every ``every`` seconds from ``offset`` on."""
    k = 0
    while offset + k * every < seconds:
        await asyncio.sleep(max(0.0, start + offset + k * every - time.perf_counter()))
        began = time.perf_counter() - start
        rc, out, err, took = await _command([str(BIN / "mloop"), "-c", config, "monitor", "--json"], env, cwd)
        soak.buckets[min(int(began // BUCKET_SECONDS), len(soak.buckets) - 1)].monitors += 1
        entry: dict[str, Any] = {"t": round(began, 1), "rc": rc, "seconds": round(took, 2)}
        if rc == 0:
            try:
                result = json.loads(out[out.index("{") :])
                entry["version"] = result.get("model_version")
                entry["rows"] = result.get("rows")
            except (ValueError, AttributeError):
                entry["output"] = out[-300:]
        else:
            entry["error"] = err[-1000:]
        soak.monitors.append(entry)
        k += 1


async def _sampler(soak: Soak, server: int, start: float, label: str) -> None:
    """At the end of every bucket: each worker's RSS, the parent's, the server's CPU; a line a minute."""
    cpu_before = _tree_cpu_seconds(server)
    worker_cpu = {pid: _cpu_of(pid) for pid in _workers(server)}
    machine, postgres = _machine_cpu(), _postgres_cpu()
    for index, bucket in enumerate(soak.buckets):
        await asyncio.sleep(max(0.0, start + (index + 1) * BUCKET_SECONDS - time.perf_counter()))
        workers = _workers(server)
        soak.worker_pids.update(workers)
        bucket.rss_workers_mb = [rss for rss in map(_rss_mb, workers) if rss is not None]
        for pid in workers:
            used = _cpu_of(pid)
            bucket.cpu_workers_pct.append((used - worker_cpu.get(pid, used)) / BUCKET_SECONDS * 100)
            worker_cpu[pid] = used
        bucket.rss_parent_mb = _rss_mb(server) or 0.0
        busy, total = _machine_cpu()
        bucket.machine_busy_pct = (busy - machine[0]) / max(total - machine[1], 1.0) * 100
        machine = (busy, total)
        used = _postgres_cpu()
        bucket.postgres_cpu_pct = (used - postgres) / BUCKET_SECONDS * 100
        postgres = used
        cpu = _tree_cpu_seconds(server)
        bucket.server_cpu_pct = (cpu - cpu_before) / BUCKET_SECONDS * 100
        cpu_before = cpu
        if (index + 1) % (60 // BUCKET_SECONDS) == 0 or index + 1 == len(soak.buckets):
            last = soak.buckets[max(0, index + 1 - 60 // BUCKET_SECONDS) : index + 1]
            latencies = [x for b in last for x in b.latencies]
            outcomes: Counter[str] = Counter()
            for b in last:
                outcomes.update(b.outcomes)
            errors = outcomes["5xx"] + outcomes["unexpected_4xx"] + outcomes["transport"]
            rate = sum(outcomes.values()) / (len(last) * BUCKET_SECONDS)
            print(
                f"{label:10s} {(index + 1) * BUCKET_SECONDS / 60:5.1f} min  {rate:6.1f} req/s"
                f"  p50 {_percentile(latencies, 50) or 0:6.2f} ms  p99 {_percentile(latencies, 99) or 0:7.2f} ms"
                f"  workers RSS {sum(bucket.rss_workers_mb):6.1f} MB  CPU {bucket.server_cpu_pct:5.1f}%"
                f" ({' + '.join(f'{x:.0f}' for x in bucket.cpu_workers_pct)})"
                f"  machine {bucket.machine_busy_pct:3.0f}% busy"
                f"  errors {errors}  moves {len(soak.moves)}  monitors {len(soak.monitors)}",
                flush=True,
            )


async def _drive(port: int, bodies: dict[str, list[Body]], soak: Soak, server: int, config: str,
                 versions: list[str], champion: str, env: dict[str, str], cwd: Path, seconds: float, rate: float,
                 concurrency: int, move_every: float, monitor_every: float, label: str) -> None:  # fmt: skip
    client = Client(HOST, port, concurrency, REQUEST_TIMEOUT_SECONDS)
    try:
        start = time.perf_counter()
        background = [
            asyncio.create_task(_sampler(soak, server, start, label)),
            asyncio.create_task(_mover(soak, config, versions, champion, env, cwd, start, seconds, move_every)),
            asyncio.create_task(_monitor(soak, config, env, cwd, start, seconds, monitor_every, move_every / 2)),
        ]
        slots = asyncio.Semaphore(concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        counters = Counter[str]()
        kinds = _schedule(MIX)
        due = start
        while True:
            now = time.perf_counter()
            if now - start >= seconds:
                break
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.5:  # fell behind (the machine is busy): skip the backlog rather than burst
                soak.behind_seconds += now - due
                due = now
            kind = next(kinds)
            body = _feedback(soak, time.perf_counter() - start) if kind == "feedback" else None
            if body is None:
                kind = "predict" if kind == "feedback" else kind
                choices = bodies[kind]
                body = choices[counters[kind] % len(choices)]
                counters[kind] += 1
            await slots.acquire()
            task = asyncio.create_task(_send(client, soak, body, start))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            task.add_done_callback(lambda _: slots.release())
            soak.sent += 1
            due += 1.0 / rate
        if in_flight:
            await asyncio.wait(in_flight)
        await asyncio.gather(*background)
        soak.metrics = await _scrape(port, len(_workers(server)))
    finally:
        client.close()


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """``histogram_quantile`` of cumulative ``(upper bound, count)`` pairs, linear within a bucket; seconds."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


async def _scrape(port: int, workers: int) -> dict[str, Any]:
    """Each worker's /metrics once traffic has stopped (a new connection per scrape lands on either worker;
    their texts differ), summed: server-side time per endpoint and the prediction log's counters."""
    from prometheus_client.parser import text_string_to_metric_families

    client = Client(HOST, port, 1, REQUEST_TIMEOUT_SECONDS, idle_expiry=0.0)
    by_worker: dict[str, str] = {}  # a worker's counters but those of /metrics itself -> its latest text
    for _ in range(40 * workers):
        text = (await client.request("GET", "/metrics")).content.decode()
        by_worker["\n".join(line for line in text.splitlines() if '"/metrics"' not in line)] = text
        if len(by_worker) >= workers:
            break
    client.close()
    texts = list(by_worker.values())
    counters: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    histograms: dict[str, dict[float, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "mloop_request_duration_seconds_bucket":
                    bound = float(sample.labels["le"])
                    counts = histograms.setdefault(sample.labels["endpoint"], {})
                    counts[bound] = counts.get(bound, 0.0) + sample.value
                elif sample.name == "mloop_requests_total":
                    statuses[f"{sample.labels['endpoint']} {sample.labels['status']}"] += int(sample.value)
                elif sample.name in (
                    "mloop_prediction_log_dropped_total", "mloop_prediction_log_spilled_total",
                    "mloop_prediction_log_replayed_total", "mloop_model_refused_total", "mloop_shadow_skipped_total",
                ):  # fmt: skip
                    counters[sample.name] += int(sample.value)
    endpoints = {}
    for endpoint, by_bound in sorted(histograms.items()):
        pairs = sorted(by_bound.items())
        over_1s = pairs[-1][1] - next(c for b, c in pairs if b >= 1.0)
        endpoints[endpoint] = {
            "count": int(pairs[-1][1]),
            "p50_ms": _round(None if (v := _quantile(pairs, 0.5)) is None else v * 1000),
            "p99_ms": _round(None if (v := _quantile(pairs, 0.99)) is None else v * 1000),
            "over_1s": int(over_1s),
        }
    return {
        "workers_scraped": len(texts),
        "counters": dict(counters),
        "requests_by_endpoint_and_status": dict(sorted(statuses.items())),
        "duration_by_endpoint": endpoints,
    }


def _server_log(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace")
    reloads = [m.groups() for m in RELOAD_LINE.finditer(text) if m.group(2) != "none"]
    problems = [line for line in text.splitlines() if re.search(r"ERROR|Traceback|refused|dropped|WARNING", line)]
    return {
        "reload_lines": len(reloads),
        "worker_starts": len(set(STARTED_LINE.findall(text))),
        "problem_lines": len(problems),
        "problem_examples": problems[:10],
    }


def _reloads(soak: Soak) -> list[dict[str, Any]]:
    """For each alias move: whether the answers then carried the new version, and how long after the promote
    command returned the old version still answered (0: not at all)."""
    out = []
    done = [m for m in soak.moves if m["rc"] == 0]
    for index, move in enumerate(done):
        until = done[index + 1]["t"] if index + 1 < len(done) else math.inf
        after = [(t, v) for t, v in soak.versions if move["t"] <= t < until]
        new = [t for t, v in after if v == move["to"]]
        old = [t for t, v in after if v == move["from"] and t >= move["done"]]
        out.append({
            "move": index + 1,
            "at_s": move["t"],
            "to": move["to"],
            "seen": bool(new),
            "old_answered_for_s": round(old[-1] - move["done"], 2) if old else 0.0,
        })  # fmt: skip
    return out


def _summary(soak: Soak, seconds: float, rows: int, log: dict[str, Any], workers: int) -> dict[str, Any]:
    buckets = soak.buckets
    outcomes: Counter[str] = Counter()
    for bucket in buckets:
        outcomes.update(bucket.outcomes)
    good = [x for b in buckets for x in b.latencies]
    single = [x for b in buckets for x in b.single]
    rss = [sum(b.rss_workers_mb) for b in buckets if b.rss_workers_mb]
    window = max(1, round(WINDOW_FRACTION * len(rss)))
    warm = math.ceil(WARMUP_FRACTION * len(rss))
    after_warmup = statistics.median(rss[warm : warm + window]) if rss else 0.0
    end = statistics.median(rss[-window:]) if rss else 0.0
    growth = (end / after_warmup - 1) * 100 if after_warmup else math.nan
    records = sum(b.records for b in buckets)
    reloads = _reloads(soak)
    moved = [m for m in soak.moves if m["rc"] == 0]
    errors = {k: outcomes[k] for k in ("5xx", "unexpected_4xx", "transport")}
    injected = outcomes["injected_as_expected"] + outcomes["injected_other"]
    monitors_ok = all(m["rc"] in (0, NO_TRAFFIC_EXIT_CODE) for m in soak.monitors)
    requests = sum(outcomes.values())
    checks = {
        "no_errors_but_injected": sum(errors.values()) == 0,
        "injected_all_4xx": injected > 0 and all(400 <= int(key.rsplit(" ", 1)[1]) < 500 for key in soak.injected),
        "injected_as_expected": outcomes["injected_other"] == 0 and injected > 0,
        "log_rows_equal_records_answered": rows == records,
        f"rss_growth_at_most_{MAX_RSS_GROWTH:.0%}": bool(growth <= MAX_RSS_GROWTH * 100),
        "reloads_seen_at_least_moves": sum(r["seen"] for r in reloads) >= len(soak.moves) > 0
        and len(moved) == len(soak.moves),
        "monitor_runs_ok": monitors_ok and bool(soak.monitors),
        "no_worker_restarts": len(soak.worker_pids) == workers and log["worker_starts"] == workers,
        "no_log_rows_dropped": soak.metrics.get("workers_scraped") == workers
        and not soak.metrics["counters"].get("mloop_prediction_log_dropped_total"),
    }
    return {
        "minutes": round(seconds / 60, 2),
        "requests": requests,
        "requests_per_second": round(requests / seconds, 1),
        "behind_seconds": round(soak.behind_seconds, 1),
        "good_answered": outcomes["ok"],
        "p50_ms": _round(_percentile(good, 50)),
        "p99_ms": _round(_percentile(good, 99)),
        "max_ms": _round(max(good) * 1000 if good else None),
        "p99_of_buckets_ms": {
            "min": _round(min((_percentile(b.latencies, 99) or math.inf) for b in buckets)),
            "max": _round(max((_percentile(b.latencies, 99) or 0.0) for b in buckets)),
        },
        "single_p50_ms": _round(_percentile(single, 50)),
        "single_p99_ms": _round(_percentile(single, 99)),
        "per_kind": {
            kind: {"requests": len(v), "p50_ms": _round(_percentile(v, 50)), "p99_ms": _round(_percentile(v, 99))}
            for kind, v in sorted(soak.kinds.items())
        },
        "rss_workers_mb": {
            "min": _round(min(rss) if rss else None, 1),
            "max": _round(max(rss) if rss else None, 1),
            "first": _round(rss[0] if rss else None, 1),
            "after_warmup": round(after_warmup, 1),
            "end": round(end, 1),
            "growth_pct": round(growth, 2),
        },
        "rss_parent_mb_max": _round(max(b.rss_parent_mb for b in buckets), 1),
        "server_cpu_pct_median": round(statistics.median(b.server_cpu_pct for b in buckets), 1),
        "postgres_cpu_pct_median": round(statistics.median(b.postgres_cpu_pct for b in buckets), 1),
        "machine_busy_pct_median": round(statistics.median(b.machine_busy_pct for b in buckets), 1),
        "errors": errors,
        "unexpected_examples": soak.unexpected[:10],
        "injected": {
            "sent": injected,
            "as_expected": outcomes["injected_as_expected"],
            "by_route": dict(soak.injected),
        },
        "records_answered": records,
        "log_rows": rows,
        "labels_attached": soak.labels_attached,
        "alias_moves": len(soak.moves),
        "alias_moves_failed": [m for m in soak.moves if m["rc"]],
        "promote_seconds_median": _round(statistics.median(m["seconds"] for m in soak.moves) if soak.moves else None),
        "reloads_seen": sum(r["seen"] for r in reloads),
        "reload_log_lines": log["reload_lines"],
        "old_version_answered_for_s_max": max((r["old_answered_for_s"] for r in reloads), default=None),
        "reloads": reloads,
        "monitor_runs": len(soak.monitors),
        "monitor_exit_codes": dict(Counter(str(m["rc"]) for m in soak.monitors)),
        "monitor_seconds": [m["seconds"] for m in soak.monitors],
        "monitor_failures": [m for m in soak.monitors if m["rc"] not in (0, NO_TRAFFIC_EXIT_CODE)][:3],
        "worker_pids_seen": len(soak.worker_pids),
        "server_metrics": soak.metrics,
        "server_log": log,
        "checks": checks,
    }


def _pg_database(admin_url: str, name: str, create: bool) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count_rows(store_url: str | Path) -> int:
    from mloop.data.predictions import open_prediction_store

    if isinstance(store_url, Path) and not store_url.exists():
        return 0
    return open_prediction_store(store_url).count()


def _run(args: argparse.Namespace, project: Any, log_kind: str, bodies: dict[str, list[Body]], versions: list[str],
         env: dict[str, str], tmp: Path, seconds: float) -> tuple[Soak, dict[str, Any]]:  # fmt: skip
    from mloop.registry.versions import alias_version

    database = None
    store: str | Path = project.predictions_db
    run_env = dict(env)
    if log_kind == "postgresql":
        database = f"mloop_soak_{os.getpid()}_{int(time.time())}"
        _pg_database(args.pg_admin_url, database, create=True)
        store = args.pg_admin_url.rsplit("/", 1)[0] + f"/{database}"
        run_env["MLOOP_MONITOR__PREDICTIONS_URL"] = str(store)
    try:
        before = _count_rows(store)
        champion = alias_version(project, "champion")
        assert champion is not None
        port = _free_port()
        config = str(project.root / "mloop.yaml")
        command = [str(BIN / "mloop"), "-c", config, "serve", "--host", HOST, "--port", str(port),
                   "--workers", str(args.workers)]  # fmt: skip
        n_buckets = math.ceil(seconds / BUCKET_SECONDS)
        soak = Soak(buckets=[Bucket() for _ in range(n_buckets)])
        logs = tmp / log_kind
        logs.mkdir()
        load_before = os.getloadavg()
        print(f"{log_kind}: mloop serve --workers {args.workers}, {seconds / 60:g} min at {args.rate:g} req/s",
              flush=True)  # fmt: skip
        client_cpu = time.process_time()
        with _server("mloop", command, run_env, tmp, f"http://{HOST}:{port}/ready", logs) as process:
            asyncio.run(
                _drive(port, bodies, soak, process.pid, config, versions,
                       champion.version, run_env, tmp, seconds, args.rate, args.concurrency, args.move_every,
                       args.monitor_every, log_kind)
            )  # fmt: skip
        client_cpu = time.process_time() - client_cpu
        rows = _count_rows(store) - before
        spill = project.workspace / "predictions-spill"
        spilled = sum(1 for _ in spill.glob("*.jsonl")) if spill.is_dir() else 0
        summary = _summary(soak, seconds, rows, _server_log(logs / "mloop.log"), args.workers)
        summary["spill_files_left"] = spilled
        summary["load_generator_cpu_us_per_request"] = round(client_cpu / max(soak.sent, 1) * 1e6)
        if not all(summary["checks"].values()):
            kept = Path(tempfile.gettempdir()) / f"mloop-soak-{log_kind}-server.log"
            shutil.copyfile(logs / "mloop.log", kept)
            summary["server_log_kept"] = str(kept)
        summary["load_before"] = [round(x, 2) for x in load_before]
        summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
        if log_kind == "postgresql":
            summary["database"] = database
        return soak, summary
    finally:
        if database is not None:
            _pg_database(args.pg_admin_url, database, create=False)


def _write_csv(path: Path, runs: dict[str, Soak]) -> None:
    columns = ["log", "t_end_s", "requests", "good", "p50_ms", "p99_ms", "max_ms", "single_p50_ms", "single_p99_ms",
               "injected", "unexpected_4xx", "5xx", "transport", "records", "rss_workers_mb", "rss_worker_mb",
               "cpu_worker_pct", "rss_parent_mb", "server_cpu_pct", "postgres_cpu_pct", "machine_busy_pct", "moves",
               "monitors"]  # fmt: skip
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for log_kind, soak in runs.items():
            for index, b in enumerate(soak.buckets):
                injected = b.outcomes["injected_as_expected"] + b.outcomes["injected_other"]
                writer.writerow([
                    log_kind, (index + 1) * BUCKET_SECONDS, sum(b.outcomes.values()), b.outcomes["ok"],
                    _round(_percentile(b.latencies, 50)), _round(_percentile(b.latencies, 99)),
                    _round(max(b.latencies) * 1000 if b.latencies else None),
                    _round(_percentile(b.single, 50)), _round(_percentile(b.single, 99)), injected,
                    b.outcomes["unexpected_4xx"], b.outcomes["5xx"], b.outcomes["transport"], b.records,
                    round(sum(b.rss_workers_mb), 1), " ".join(f"{x:.1f}" for x in b.rss_workers_mb),
                    " ".join(f"{x:.1f}" for x in b.cpu_workers_pct),
                    round(b.rss_parent_mb, 1), round(b.server_cpu_pct, 1), round(b.postgres_cpu_pct, 1),
                    round(b.machine_busy_pct, 1), b.moves, b.monitors,
                ])  # fmt: skip


def _plot(path: Path, runs: dict[str, Soak], summaries: dict[str, dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colours = {"sqlite": "tab:blue", "postgresql": "tab:orange"}
    figure, (latency, memory, cpu) = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, constrained_layout=True, height_ratios=[3, 2, 1.4]
    )
    for log_kind, soak in runs.items():
        colour = colours.get(log_kind, "tab:green")
        middle = [(i + 0.5) * BUCKET_SECONDS / 60 for i in range(len(soak.buckets))]
        ends = [(i + 1) * BUCKET_SECONDS / 60 for i in range(len(soak.buckets))]
        for q, style in ((50, "-"), (99, "--")):
            values = [_percentile(b.latencies, q) for b in soak.buckets]
            latency.plot(middle, [math.nan if v is None else v for v in values], color=colour, linestyle=style,
                         label=f"{log_kind} p{q}")  # fmt: skip
        rss = [sum(b.rss_workers_mb) if b.rss_workers_mb else math.nan for b in soak.buckets]
        growth = summaries[log_kind]["rss_workers_mb"]["growth_pct"]
        memory.plot(ends, rss, color=colour, label=f"{log_kind}: end vs after warm-up {growth:+.1f}%")
        cpu.plot(ends, [b.server_cpu_pct for b in soak.buckets], color=colour, label=f"{log_kind}: mloop serve")
        cpu.plot(ends, [b.machine_busy_pct * (os.cpu_count() or 1) for b in soak.buckets], color=colour,
                 linestyle=":", label=f"{log_kind}: whole machine")  # fmt: skip
        for run in soak.monitors:
            latency.plot(run["t"] / 60, 0.03, marker="^", color=colour, markersize=6,
                         transform=latency.get_xaxis_transform())  # fmt: skip
    first = next(iter(runs.values()))
    for move in first.moves:
        for axis in (latency, memory, cpu):
            axis.axvline(move["t"] / 60, color="grey", alpha=0.3, linewidth=0.8)
    span = max(len(s.buckets) for s in runs.values()) * BUCKET_SECONDS / 60
    for axis in (latency, memory, cpu):
        axis.axvspan(0, span * WARMUP_FRACTION, color="grey", alpha=0.08)
        axis.grid(alpha=0.3)
    latency.set_yscale("log")
    latency.set_ylabel("latency, per 10 s (ms)")
    latency.legend(loc="upper right", fontsize=8, ncol=2)
    latency.set_title(title, fontsize=9)
    memory.set_ylabel("RSS, both workers (MB)")
    memory.legend(loc="lower right", fontsize=8)
    cpu.set_ylabel("CPU (% of one core)")
    cpu.set_ylim(bottom=0)
    cpu.legend(loc="upper right", fontsize=7, ncol=2)
    cpu.set_xlabel("minutes (shaded: warm-up; grey lines: alias moves; triangles: mloop monitor runs)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 minutes per log instead of 30")
    parser.add_argument("--minutes", type=float, default=None, help="minutes per log (default 30; quick 10)")
    parser.add_argument("--logs", default="sqlite,postgresql", help="prediction logs to soak, in order")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, all kinds together")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests in flight at once")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of mloop serve")
    parser.add_argument("--move-every", type=float, default=60.0, help="seconds between alias moves")
    parser.add_argument("--monitor-every", type=float, default=120.0, help="seconds between mloop monitor runs")
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database to connect to while creating (and dropping) the run's own database",
    )
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "soak.png",
                        help="the plot; the samples go beside it (.csv)")  # fmt: skip
    args = parser.parse_args()
    seconds = (args.minutes or (10.0 if args.quick else 30.0)) * 60
    logs = [x.strip() for x in args.logs.split(",") if x.strip()]
    if not set(logs) <= {"sqlite", "postgresql"} or not logs:
        raise SystemExit(f"--logs takes sqlite and/or postgresql, not {args.logs!r}")
    if "postgresql" in logs:
        try:
            _pg_database(args.pg_admin_url, "mloop_soak_probe", create=False)
        except Exception as exc:  # a missing server or driver: say so before training
            raise SystemExit(f"no PostgreSQL at {args.pg_admin_url} ({exc}); --logs sqlite soaks without it") from None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    ames = _ames()
    tmp = Path(tempfile.mkdtemp(prefix="mloop-soak-"))
    try:
        started = time.monotonic()
        print("training the Ames project once, and a second version", flush=True)
        project = _project(tmp / "project", ames[ames["Year_Sold"] <= 2007])
        from mloop.data.contract import load_contract
        from mloop.pipeline import stages
        from mloop.registry import versions as registry

        project.config.train.seed = 7  # a second version for the alias to move to: another seed and rate
        project.config.train.params = {**project.config.train.params, "learning_rate": 0.08}
        second = registry.register(project, stages.train_stage(project).run_id)
        champion = registry.alias_version(project, "champion")
        assert champion is not None
        version_pair = [champion.version, second.version]
        contract = load_contract(project.contract_path)
        houses = ames[ames["Year_Sold"] >= 2008]
        dtypes = {name: spec.dtype for name, spec in contract.columns.items()}
        bodies = _bodies(houses, contract.features, dtypes, contract.target, project.name)
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1"}
        runs: dict[str, Soak] = {}
        summaries: dict[str, dict[str, Any]] = {}
        for log_kind in logs:
            runs[log_kind], summaries[log_kind] = _run(args, project, log_kind, bodies, version_pair, env, tmp, seconds)
            print(f"{log_kind}: {json.dumps(summaries[log_kind]['checks'])}", flush=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        title = (
            f"mloop serve --workers {args.workers}, {args.rate:g} req/s mixed traffic, alias move every "
            f"{args.move_every:g} s, monitor every {args.monitor_every:g} s ({stamp}, {os.cpu_count()} shared cores)"
        )
        csv_path = args.plot.with_suffix(".csv")
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        _write_csv(csv_path, runs)
        _plot(args.plot, runs, summaries, title)
        checks = {
            f"{log_kind}_{name}": value for log_kind, s in summaries.items() for name, value in s["checks"].items()
        }
        result = {
            "benchmark": "soak",
            "finished": stamp,
            "minutes_per_log": round(seconds / 60, 2),
            "rate": args.rate,
            "mix_percent": MIX,
            "kinds": KIND_LABELS,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "versions": version_pair,
            "results": summaries,
            "checks": checks,
            "all_checks_passed": all(checks.values()),
            "plot": str(args.plot),
            "samples": str(csv_path),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(result, default=str))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
