"""One retraining at a time per project, across processes, surviving a crash.

An exclusive ``flock`` on ``.mloop/retrain.lock``: the kernel drops it when its holder exits, however
it exits (SIGKILL, OOM kill, power loss of a container), so a crashed controller never leaves the
project locked and nothing has to guess whether a lock is stale. The holder writes its PID, host and
start time into the file so a refused controller can say who holds it. Like any ``flock`` it is only
as good as the file system: it holds on local disks and a shared volume of one node; controllers on
several nodes need a shared lock service instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from mloop.errors import LockBusy


class RetrainLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def holder(self) -> dict[str, object]:
        """Who wrote the lock file last (the holder while it is locked); ``{}`` if unknown."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        """Take the lock now or raise :class:`LockBusy` naming the holder; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = self.holder()
            raise LockBusy(
                f"another retraining controller holds {self.path} (pid {who.get('pid', '?')} on "
                f"{who.get('host', '?')} since {who.get('since', '?')}); this one skips its turn. "
                "The lock is released when that process ends."
            ) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # the file stays (unlinking would race with a waiting acquirer)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RetrainLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


__all__ = ["RetrainLock"]
