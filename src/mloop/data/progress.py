"""Report how much of a file a reader has consumed, so long ingests can show a progress bar."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)


class CountingReader(io.RawIOBase):
    """A read-only binary stream that calls ``progress`` as bytes pass through it."""

    def __init__(self, inner: BinaryIO, total: int, progress: Progress) -> None:
        super().__init__()
        self._inner = inner
        self._total = total
        self._progress = progress
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        size = len(data)
        memoryview(buffer)[:size] = data
        self._done += size
        self._progress(self._done, self._total)
        return size
