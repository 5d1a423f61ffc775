"""`mloop stream` on real brokers: killed three times and restarted, every answer reaches the sink exactly
once and equals the offline prediction; malformed events land in the dead letters with their reasons; an
alias move mid-stream switches version without losing an event."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from tests.helpers.brokers import Broker, broker
from tests.helpers.cli import clean_env, mloop_argv
from tests.helpers.projects import train_champion, train_version, write_project

from mloop.data.contract import coerce_frame
from mloop.project import Project
from mloop.registry import gate
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, alias_version, get_version, load_model

pytestmark = pytest.mark.integration

EVENTS = 10_000
BAD_EVERY = 100  # 1% of the events are malformed
KILLS = 3
SEED = 20261202
RUN_SECONDS = 240.0


@pytest.fixture(scope="module")
def stream_project(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Project:
    return train_champion(write_project(tmp_path_factory.mktemp("stream") / "ames", train_frame, "ames-stream"))


@pytest.fixture(params=["redis", "nats"])
def events_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with broker(request.param) as made:
        yield made


def _features(project: Project, ames: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    info = alias_version(project, CHAMPION)
    assert info is not None
    contract = version_contract(project, info)
    frame = ames.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    columns = [c for c in contract.features if c in frame.columns]
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame[columns].to_dict("records")]
    return frame, records


def _malformed(i: int, record: dict[str, Any], required: str) -> tuple[bytes | dict[str, bytes], str]:
    """A bad event of one of five kinds, and a word its dead letter's reason must contain."""
    kind = (i // BAD_EVERY) % 5
    if kind == 0:
        return b"{not json", "not JSON"
    if kind == 1:
        return orjson.dumps({**record, "Gr_Liv_Area": "big"}), "Gr_Liv_Area"
    if kind == 2:
        return orjson.dumps({k: v for k, v in record.items() if k != required}), required
    if kind == 3:
        return orjson.dumps([record]), "JSON object"
    return orjson.dumps({**record, "request_id": 42}), "request_id"


def _consumer(project: Project, b: Broker, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = mloop_argv(
        "stream",
        "--source",
        b.uri("events"),
        "--sink",
        b.uri("answers"),
        "--dead-letter",
        b.uri("dead"),
        "--consumer",
        "c1",
        "--metrics-port",
        "0",
        *extra,
        project=project,
    )
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)


def _finish(process: subprocess.Popen[bytes], log: Path) -> None:
    try:
        code = process.wait(RUN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"the consumer did not stop by itself:\n{log.read_text()[-4000:]}")
    assert code == 0, log.read_text()[-4000:]


def _offline(project: Project, version: str, frame: pd.DataFrame) -> np.ndarray:
    contract = version_contract(project, get_version(project, version))
    return np.asarray(load_model(project, version).predict(coerce_frame(frame, contract)), dtype=float)


def test_killed_three_times_every_answer_reaches_the_sink_once(
    stream_project: Project, ames: pd.DataFrame, events_broker: Broker, tmp_path: Path
) -> None:
    b = events_broker
    project = stream_project
    info = alias_version(project, CHAMPION)
    assert info is not None
    contract = version_contract(project, info)
    required = next(c for c in contract.features if not contract.columns[c].nullable)
    frame, records = _features(project, ames, EVENTS, SEED)
    events: list[bytes | dict[str, bytes]] = []
    good: dict[str, int] = {}
    bad: dict[int, str] = {}
    for i, record in enumerate(records):
        if i % BAD_EVERY == BAD_EVERY - 1:
            event, word = _malformed(i, record, required)
            bad[i] = word
        else:
            event = orjson.dumps({**record, "request_id": f"ev-{i:05d}"})
            good[f"ev-{i:05d}"] = i
        events.append(event)
    b.produce("events", events)

    log = tmp_path / "consumer.log"
    rng = random.Random(SEED)  # noqa: S311 - kill points, not secrets
    kill_at = sorted(rng.sample(range(EVENTS // 20, EVENTS * 9 // 10), KILLS))
    for threshold in kill_at:
        process = _consumer(project, b, log, "--batch-size", "200")
        deadline = time.monotonic() + RUN_SECONDS
        while b.count("answers") < threshold and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, f"the consumer stopped before being killed:\n{log.read_text()[-4000:]}"
        os.killpg(process.pid, signal.SIGKILL)  # at a random point: mid-batch, mid-write or mid-ack
        process.wait(30)
    process = _consumer(project, b, log, "--batch-size", "200", "--idle-exit", "5")
    _finish(process, log)

    answers = b.messages("answers")
    ids = [orjson.loads(m["data"])["request_id"] for m in answers]
    assert len(answers) == len(good), f"{len(answers)} answers for {len(good)} good events (kills at {kill_at})"
    assert set(ids) == set(good)
    want = _offline(project, info.version, frame)
    for message in answers:
        answer = orjson.loads(message["data"])
        assert message["request_id"] == answer["request_id"]
        assert answer["model_version"] == info.version
        assert answer["prediction"] == pytest.approx(want[good[answer["request_id"]]], rel=1e-9)

    dead = [orjson.loads(m["data"]) for m in b.messages("dead")]
    assert len(dead) == len(bad)
    assert not [letter for letter in dead if '"request_id":"ev-' in letter["data"]], "a good event was dead-lettered"
    for word in set(bad.values()):
        expected = sum(1 for w in bad.values() if w == word)
        assert sum(1 for letter in dead if word in letter["reason"]) >= expected, (word, dead[:3])
    assert b.pending("events", "mloop-ames-stream") == 0
    assert project.prediction_store().count() >= len(good)
    logged = project.prediction_store().read()
    assert set(good) <= set(logged["request_id"])
    assert logged["request_id"].is_unique


def test_an_alias_move_mid_stream_switches_version_without_losing_an_event(
    tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame, train_frame: pd.DataFrame, events_broker: Broker
) -> None:
    b = events_broker
    tmp = tmp_path_factory.mktemp("stream-reload")
    project = train_champion(write_project(tmp / "ames", train_frame, "ames-stream-reload"))
    newer = ames[ames["Year_Sold"] <= 2007].iloc[len(train_frame) :]
    newer.to_csv(tmp / "newer.csv", index=False)
    second = train_version(project, tmp / "newer.csv")
    frame, records = _features(project, ames, 6000, SEED + 1)
    b.produce("events", [orjson.dumps({**r, "request_id": f"ev-{i:05d}"}) for i, r in enumerate(records)])

    log = tmp / "consumer.log"
    process = _consumer(project, b, log, "--batch-size", "50", "--linger-ms", "0", "--idle-exit", "5")
    deadline = time.monotonic() + RUN_SECONDS
    while b.count("answers") < 1000 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.promote(project, second.version, force=True, reason="test: alias moved mid-stream")
    _finish(process, log)

    answers = [orjson.loads(m["data"]) for m in b.messages("answers")]
    assert sorted(a["request_id"] for a in answers) == [f"ev-{i:05d}" for i in range(len(records))]
    versions = [a["model_version"] for a in answers]
    first = versions.index(second.version)  # the new version answered…
    assert set(versions[:first]) == {"1"} and set(versions[first:]) == {second.version}  # …and only it, after
    assert 0 < first < len(versions), "the move happened while events were flowing"
    want = {v: _offline(project, v, frame) for v in ("1", second.version)}
    for answer in answers:
        index = int(answer["request_id"][3:])
        assert answer["prediction"] == pytest.approx(want[answer["model_version"]][index], rel=1e-9)


@pytest.fixture
def redis_broker() -> Iterator[Broker]:
    with broker("redis") as made:
        yield made


def test_sigterm_drains_the_batch_in_hand_and_labels_come_back_through_a_stream(
    stream_project: Project, ames: pd.DataFrame, redis_broker: Broker, tmp_path: Path
) -> None:
    b, project = redis_broker, stream_project
    _frame, records = _features(project, ames, 3000, SEED + 2)
    b.produce("events", [orjson.dumps({**r, "request_id": f"term-{i:05d}"}) for i, r in enumerate(records)])
    log = tmp_path / "consumer.log"
    process = _consumer(project, b, log, "--batch-size", "100", "--linger-ms", "0")
    deadline = time.monotonic() + RUN_SECONDS
    while b.count("answers") < 500 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(30) == 0, log.read_text()[-4000:]
    done = b.count("answers")
    assert 500 <= done < len(records), "stopped mid-stream"
    assert b.pending("events", "mloop-ames-stream") == 0, "every event read was acknowledged before exiting"

    # The rest, plus labels for the first 50 answers and one for a request id never scored.
    labels = [orjson.dumps({"request_id": f"term-{i:05d}", "label": 100_000 + i}) for i in range(50)]
    b.produce("labels", [*labels, orjson.dumps({"request_id": "nobody", "label": 1}), b"[]"])
    process = _consumer(project, b, log, "--labels", b.uri("labels"), "--idle-exit", "5", "--json")
    _finish(process, log)
    assert b.count("answers") == len(records)
    stored = project.prediction_store().read(labelled_only=True).set_index("request_id")
    assert {f"term-{i:05d}" for i in range(50)} <= set(stored.index)
    assert float(stored.loc["term-00007", "label"]) == 100_007
    dead = [orjson.loads(m["data"])["reason"] for m in b.messages("labels-dead")]
    assert len(dead) == 2 and any("'nobody'" in reason for reason in dead), dead
