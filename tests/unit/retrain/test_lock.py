"""The retrain lock across real processes: exclusive while held, free again when the holder dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mloop.errors import LockBusy
from mloop.retrain.lock import RetrainLock

HOLD = """
import sys, time
from pathlib import Path
from mloop.retrain.lock import RetrainLock
lock = RetrainLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "retrain.lock"
    with RetrainLock(path):
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(LockBusy, match=f"pid {os.getpid()}"):
            RetrainLock(path).acquire()
    with RetrainLock(path):  # released: free again
        pass


def test_a_killed_holder_leaves_the_lock_usable(tmp_path: Path) -> None:
    path = tmp_path / "retrain.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusy, match=f"pid {holder.pid}"):
            RetrainLock(path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 5
    while True:  # the kernel drops the lock with the process; no stale-lock cleanup is needed
        try:
            with RetrainLock(path):
                break
        except LockBusy:
            assert time.monotonic() < deadline, "the dead holder's lock was never released"
            time.sleep(0.05)
