"""The append-only audit trail of every promotion, rejection and rollback."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def append(path: Path, event: str, **fields: Any) -> dict[str, Any]:
    """Append one JSON line; opened in append mode and fsynced so a crash never loses a decision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": event,
        "user": _user(),
        **fields,
    }
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with path.open("a+b") as handle:
        # A process killed mid-write leaves a torn last line without its newline: start on a line of our own.
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return record


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete entry, oldest first. A line that is not a JSON object is a write torn by a crash
    (``append`` writes whole lines only): it held no finished decision, so it is skipped, not fatal."""
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
