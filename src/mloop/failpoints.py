"""Failpoints: named step boundaries of multi-step operations where the fault tests stop a process.

Off unless ``MLOOP_FAILPOINT`` is set (one environment lookup per point), so production never pays
for them. ``MLOOP_FAILPOINT=NAME`` kills the process with SIGKILL when it reaches ``NAME`` (a crash at
exactly that boundary: no handler, no cleanup, no flush); ``NAME=wait:PATH`` blocks there until ``PATH``
exists (at most ``WAIT_SECONDS``; ``PATH.reached`` says it got there), so a test can stop MLflow,
PostgreSQL or S3 under a command that is halfway through, then let it go on. The names are listed in
``POINTS`` and docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "MLOOP_FAILPOINT"
WAIT_SECONDS = 120.0
POINTS = (
    "train:after-run-logged",  # the MLflow run and its model are logged, nothing is registered
    "register:before-create",  # the model files are hashed, no version exists yet
    "register:after-create",  # the version exists with every tag, nothing else has happened
    "promote:after-gate",  # the gate's decision is on the version, no alias has moved
    "promote:after-alias",  # the alias has moved, the audit log does not say so yet
    "rollback:after-alias",  # likewise for a rollback
    "retrain:after-train",  # a challenger is trained and registered, the gate has not run
)


def hit(name: str) -> None:
    """Do what ``MLOOP_FAILPOINT`` says at ``name``, if it names it; nothing otherwise."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, action = spec.partition("=")
    if point != name:
        return
    if action.startswith("wait:"):
        release = Path(action[len("wait:") :])
        release.with_name(release.name + ".reached").touch()  # tells the test the command is here
        deadline = time.monotonic() + WAIT_SECONDS
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["ENV", "POINTS", "hit"]
