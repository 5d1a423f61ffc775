"""Request ids: the key of each prediction log row, returned to the caller for feedback."""

from __future__ import annotations

import os
import time


def request_ids(n: int) -> list[str]:
    """``n`` new request ids: UUIDs of version 7 (RFC 9562), a millisecond timestamp then 74 random bits.

    Unique like version 4, and ordered by time, so the prediction log's primary-key index grows at its
    end: a random id per row dirtied a random index page per row, which the log then wrote out (and
    checkpointed) on every commit, several kilobytes of disk writes per prediction.
    """
    millis = time.time_ns() // 1_000_000
    stamp = millis.to_bytes(6, "big")
    noise = os.urandom(10 * n)
    ids = []
    for i in range(n):
        raw = bytearray(stamp + noise[10 * i : 10 * i + 10])
        raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
        raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 4122 variant
        h = raw.hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


__all__ = ["request_ids"]
