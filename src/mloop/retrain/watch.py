"""The retraining controller as a daemon (`mloop watch`): one check after another, surviving failures.

A check that fails — MLflow or PostgreSQL down, a full disk, a broken network, any ``MloopError`` but a
``ConfigError`` — is reported in one line and retried after a backoff (1 s doubling up to 5 min by default,
back to the start after a good check) instead of ending the daemon: a supervisor restarting it would do
the same with less to say, and Compose's ``restart: unless-stopped`` or a Kubernetes restart loop would add
their own, longer, waits. What cannot heal by waiting stops it:

- ``ConfigError``: mloop.yaml is read once, when the daemon starts (a broken file stops it there), so a
  check that finds the configuration wrong would find it wrong forever;
- ``KeyboardInterrupt`` and ``SystemExit``: Ctrl-C, and SIGTERM under :func:`sigterm_exits`, stop it at
  once, during a check or a wait.

"No traffic yet" and "no reference profile yet" (``MonitorError``, ``ProfileError``) are not failures but
waiting (see :func:`check`): the next check comes after the normal interval.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Generic, TypeVar

from mloop.errors import ConfigError, MonitorError, ProfileError

if TYPE_CHECKING:
    from mloop.project import Project
    from mloop.retrain.controller import RetrainResult

T = TypeVar("T")

# Errors a later check cannot get past by waiting: the daemon stops on them (see the module's docstring).
FATAL: tuple[type[Exception], ...] = (ConfigError,)
_MAX_EXPONENT = 1024  # factor ** failures overflows a float long before this many failures in a row
_LINE_LIMIT = 500


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after failed checks: ``initial`` after the first, times ``factor`` after each further
    failure in a row, never more than ``maximum``."""

    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.maximum > 0 and self.factor >= 1):
            raise ValueError(f"a backoff needs initial > 0, maximum > 0 and factor >= 1, not {self}")

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failed check in a row (1 for the first)."""
        if failures < 1:
            raise ValueError(f"failures counts from 1, not {failures}")
        try:
            wait = self.initial * self.factor ** min(failures - 1, _MAX_EXPONENT)
        except OverflowError:
            return self.maximum
        return min(self.maximum, wait)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One check: its number (from 1), what the check returned or the error it failed with, the failed
    checks in a row up to this one (0 after a good one) and the seconds until the next (None after the last)."""

    check: int
    result: T | None
    error: Exception | None
    failures: int
    next_in: float | None

    @property
    def failed(self) -> bool:
        return self.error is not None


def describe(error: BaseException) -> str:
    """``Type: first line of the message``, shortened: one log line, whatever the error holds."""
    lines = str(error).strip().splitlines()
    first = lines[0].strip() if lines else ""
    line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 1] + "…"


def run_watch(
    cycle: Callable[[], T],
    report: Callable[[Outcome[T]], None],
    *,
    interval: float,
    cycles: int | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome[T] | None:
    """Run ``cycle`` ``cycles`` times (forever when None), ``interval`` seconds apart after a good check and
    ``backoff`` apart after failed ones; ``report`` hears of every check before the wait that follows it.

    Any ``Exception`` of a check is a failure, except those in ``FATAL``, which propagate, as do
    ``KeyboardInterrupt`` and ``SystemExit``. Returns the last check's outcome (None when ``cycles`` is 0).
    """
    policy = backoff or Backoff()
    last: Outcome[T] | None = None
    done = 0
    failures = 0
    while cycles is None or done < cycles:
        done += 1
        result: T | None = None
        error: Exception | None = None
        try:
            result = cycle()
        except FATAL:
            raise
        except Exception as exc:  # a daemon outlives the failures of one check; see the module's docstring
            error = exc
        failures = failures + 1 if error is not None else 0
        final = cycles is not None and done >= cycles
        wait = None if final else (policy.delay(failures) if failures else interval)
        last = Outcome(done, result, error, failures, wait)
        report(last)
        if wait is not None:
            sleep(wait)
    return last


@dataclass(frozen=True)
class Waiting:
    """A check that could not decide yet: no traffic or no reference profile; ``message`` says which."""

    message: str


def check(project: Project) -> RetrainResult | Waiting:
    """One check of the controller: monitor, and retrain if the policy says so (the gate decides promotion)."""
    from mloop.retrain.controller import retrain  # imported here: training pulls in the whole stack

    try:
        return retrain(project, if_needed=True)
    except (MonitorError, ProfileError) as exc:  # no traffic (or reference) yet is no reason to back off
        return Waiting(exc.message)


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within this block SIGTERM raises ``SystemExit(143)`` in the main thread, as Ctrl-C raises
    KeyboardInterrupt: the daemon stops at once, during a check or a wait, and its ``finally`` blocks run
    (the retrain lock is released, an MLflow run is ended rather than left running). Outside the main
    thread, where Python cannot take signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["FATAL", "Backoff", "Outcome", "Waiting", "check", "describe", "run_watch", "sigterm_exits"]
