"""mloop.retrain.watch: the daemon loop of `mloop watch` outlives failed checks, backing off exponentially
(capped, reset by a good check), and stops on what waiting cannot heal, on Ctrl-C and on SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mloop.errors import ConfigError, PredictionLogError, TrackingError
from mloop.retrain.watch import Backoff, Outcome, Waiting, describe, run_watch, sigterm_exits

Script = list[Exception | str]


def scripted(script: Script) -> Callable[[], str]:
    """A check that fails with, or returns, the next item of ``script`` each time it runs."""
    items: Iterator[Exception | str] = iter(script)

    def cycle() -> str:
        item = next(items)
        if isinstance(item, Exception):
            raise item
        return item

    return cycle


def watch(script: Script, *, cycles: int | None = None, **backoff: float) -> tuple[list[Outcome[str]], list[float]]:
    """``run_watch`` over ``script`` with a recording sleep (no time passes): the outcomes and the waits."""
    outcomes: list[Outcome[str]] = []
    waits: list[float] = []
    run_watch(
        scripted(script),
        outcomes.append,
        interval=60.0,
        cycles=len(script) if cycles is None else cycles,
        backoff=Backoff(**backoff),
        sleep=waits.append,
    )
    return outcomes, waits


# The failures a controller meets in production, each as the library raises it.
OUTAGES: list[Exception] = [
    TrackingError("cannot use the MLflow store at http://mlflow:5000: connection refused"),
    ConnectionRefusedError(111, "Connection refused"),
    PredictionLogError("the prediction log at postgresql://db:5432/mloop cannot be read: server closed the connection"),
    OSError(28, "No space left on device"),
    sqlite3.OperationalError("database is locked"),
    RuntimeError("an MLflow client error that is no MloopError"),
]


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    backoff = Backoff()  # 1 s doubling to 5 min
    assert [backoff.delay(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff.delay(10**9) == 300  # days of failures: still the cap, no overflow
    assert Backoff(initial=0.5, maximum=3, factor=3).delay(3) == 3
    for bad in ({"initial": 0}, {"maximum": -1}, {"factor": 0.5}):
        with pytest.raises(ValueError, match="a backoff needs"):
            Backoff(**bad)
    with pytest.raises(ValueError, match="counts from 1"):
        backoff.delay(0)


def test_the_loop_survives_failed_checks_waiting_longer_each_time_then_recovers() -> None:
    outcomes, waits = watch([*OUTAGES, "waiting", "ok"], initial=1, maximum=20)
    # Six failures in a row: 1, 2, 4, 8, 16 s, then the cap; the good check after them waits the interval.
    assert waits == [1, 2, 4, 8, 16, 20, 60.0]
    assert [o.failures for o in outcomes] == [1, 2, 3, 4, 5, 6, 0, 0]
    assert [o.error for o in outcomes[:6]] == OUTAGES
    assert [o.result for o in outcomes[6:]] == ["waiting", "ok"]
    assert not any(o.failed for o in outcomes[6:])
    assert [o.next_in for o in outcomes] == [*waits, None]  # each outcome is reported before its wait
    assert [o.check for o in outcomes] == list(range(1, 9))


def test_a_good_check_resets_the_backoff() -> None:
    outage = TrackingError("MLflow is down")
    _, waits = watch([outage, outage, outage, "ok", outage, outage, "ok"], initial=0.5, maximum=300)
    assert waits == [0.5, 1, 2, 60.0, 0.5, 1]


def test_the_last_outcome_says_whether_the_last_check_failed() -> None:
    last = run_watch(scripted(["ok", OSError("gone")]), lambda _: None, interval=0, cycles=2, sleep=lambda _: None)
    assert last is not None and last.failed and isinstance(last.error, OSError) and last.next_in is None
    assert run_watch(scripted([]), lambda _: None, interval=0, cycles=0) is None


def test_without_cycles_it_runs_until_interrupted() -> None:
    """A daemon: no number of failures ends it, only Ctrl-C (here raised by the 50th wait)."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 50:
            raise KeyboardInterrupt

    def always_down() -> str:
        raise TrackingError("MLflow is down")

    with pytest.raises(KeyboardInterrupt):
        run_watch(always_down, lambda _: None, interval=60, backoff=Backoff(0.01, 1.0), sleep=sleep)
    assert len(waits) == 50 and waits[:3] == [0.01, 0.02, 0.04] and waits[-1] == 1.0


@pytest.mark.parametrize(
    "stop",
    [KeyboardInterrupt(), SystemExit(143), ConfigError("mloop.yaml: serve.port must be an integer")],
    ids=["ctrl-c", "sigterm", "config-error"],
)
def test_what_waiting_cannot_heal_stops_the_loop_at_once(stop: BaseException) -> None:
    outcomes: list[Outcome[str]] = []
    waits: list[float] = []

    def cycle() -> str:
        if outcomes:
            raise stop
        return "ok"

    with pytest.raises(type(stop)):
        run_watch(cycle, outcomes.append, interval=1, cycles=10, sleep=waits.append)
    assert len(outcomes) == 1 and waits == [1]  # no retry, no backoff


def test_a_real_loop_with_real_waits_is_bounded_in_time() -> None:
    """Real sleeps: five outages (10, 20, 40, 80, 80 ms), then recovery; the waits grow and the run is short."""
    started: list[float] = []

    def cycle() -> str:
        started.append(time.monotonic())
        if len(started) <= 5:
            raise ConnectionRefusedError(111, "Connection refused")
        return "ok"

    begin = time.monotonic()
    last = run_watch(cycle, lambda _: None, interval=0.0, cycles=7, backoff=Backoff(0.01, 0.08))
    elapsed = time.monotonic() - begin
    assert last is not None and last.result == "ok" and last.failures == 0
    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    for gap, wait in zip(gaps, [0.01, 0.02, 0.04, 0.08, 0.08, 0.0], strict=True):
        assert gap >= wait * 0.9, (gaps, wait)
    assert gaps[3] > gaps[0]  # the waits grew
    assert elapsed < 3.0


def test_describe_is_one_line_with_the_type() -> None:
    assert describe(TrackingError("cannot reach MLflow\nTraceback: ...")) == "TrackingError: cannot reach MLflow"
    assert describe(OSError(28, "No space left on device")) == "OSError: [Errno 28] No space left on device"
    assert describe(RuntimeError()) == "RuntimeError"
    long = describe(RuntimeError("x" * 2000))
    assert len(long) == 500 and long.endswith("…") and "\n" not in long


def test_sigterm_exits_the_block_at_once_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    begin = time.monotonic()
    with pytest.raises(SystemExit) as exited, sigterm_exits():
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        time.sleep(10)  # the wait between checks: interrupted, not waited out
    assert exited.value.code == 128 + signal.SIGTERM
    assert time.monotonic() - begin < 5
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_exits_changes_nothing_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def in_thread() -> None:
        with sigterm_exits():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(5)
    assert seen == [before]


def test_waiting_is_a_good_check() -> None:
    """No traffic yet (what `check` turns MonitorError into) resets the backoff like any good check."""
    outcomes: list[Outcome[Waiting | str]] = []
    waits: list[float] = []
    items: Iterator[Waiting | Exception] = iter([OSError("down"), Waiting("no traffic yet"), OSError("down")])

    def cycle() -> Waiting | str:
        item = next(items)
        if isinstance(item, Exception):
            raise item
        return item

    run_watch(cycle, outcomes.append, interval=5, cycles=3, backoff=Backoff(1, 10), sleep=waits.append)
    assert waits == [1, 5] and outcomes[-1].failures == 1
