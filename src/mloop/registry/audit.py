"""The append-only audit trail of every promotion, rejection and rollback, as a hash chain.

Each entry is one JSON line carrying ``prev``, the ``hash`` of the entry before it, and its own ``hash``:
the SHA-256 of its canonical JSON without ``hash`` (keys sorted, no spaces, ASCII). Editing an entry
breaks its hash; deleting, inserting or moving one breaks the ``prev`` of the entry after it.
:func:`verify` checks the whole chain and names each entry that does not hold (`mloop audit verify`).

Where the chain starts: the first chained entry's ``prev`` is ``GENESIS`` when the log was empty, and
otherwise the SHA-256 of every byte before its line. Logs written before entries were chained keep
working: those legacy entries (no ``prev``, no ``hash``) are read as before, counted by ``verify`` as
unchained, and sealed as a block by the first chained entry, so editing one of them later is caught too.
An unchained entry after a chained one is tampering.

What a chain cannot prove: that nothing was cut off its end. Deleting the last entries (or the whole
log) leaves a shorter chain that is still valid. Record the head (``mloop audit verify --json`` prints
it) somewhere the log's writers cannot change, and pass it back as ``expect_head``; likewise a log
whose chain fields were stripped from every entry reads as all-legacy, which only a recorded head
catches. Anyone who can rewrite the file can also recompute every hash: the chain makes tampering
evident, it does not prevent it.

Writers from several processes (a retrain and a promote) take an exclusive ``flock`` on the log while
they read its last entry and append, so the chain never forks. Like any ``flock`` it holds on local
disks and a shared volume of one node, not across nodes on a network file system.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

GENESIS = "0" * 64  # the ``prev`` of the first entry of a log that was empty
CHAIN_FIELDS = frozenset({"prev", "hash"})
_BLOCK = 64 * 1024  # how far back one read from the end goes while looking for the last entry


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The SHA-256 of ``entry``'s canonical JSON without its ``hash``: what its ``hash`` must be."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def append(path: Path, event: str, **fields: Any) -> dict[str, Any]:
    """Append one chained JSON line and return the entry exactly as stored (as :func:`read` gives it back).

    The log is locked for the read of its last entry and the write, opened in append mode and fsynced,
    so a crash never loses a decision and concurrent writers never fork the chain.
    """
    reserved = CHAIN_FIELDS & fields.keys()
    if reserved:
        raise ValueError(f"{sorted(reserved)} are the audit log's chain fields, not an entry's")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": event,
        "user": _user(),
        **fields,
    }
    # Hash what a reader will parse, not the Python objects: default=str turns a Path into text.
    entry: dict[str, Any] = json.loads(json.dumps(record, default=str))
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        size = handle.seek(0, os.SEEK_END)
        # A process killed mid-write leaves a torn last line without its newline: start on a line of our own.
        lead = b"\n" if size and _byte_at(handle, size - 1) != b"\n" else b""
        entry["prev"] = _next_prev(handle, size, lead)
        entry["hash"] = entry_hash(entry)
        handle.write(lead + json.dumps(entry, sort_keys=True).encode("ascii") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete entry, oldest first, chained or legacy. A line that is not a JSON object is a write
    torn by a crash (``append`` writes whole lines only): it held no finished decision, so it is skipped,
    not fatal. Reading does not verify the chain: :func:`verify` does."""
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


# ------------------------------------------------------------------------------------------ appending


def _byte_at(handle: IO[bytes], offset: int) -> bytes:
    handle.seek(offset)
    return handle.read(1)


def _next_prev(handle: IO[bytes], size: int, lead: bytes) -> str:
    """The ``prev`` of an entry appended now: the hash of the last chained entry, else the start of a chain."""
    last = _last_entry(handle, size)
    if last is not None and isinstance(last.get("hash"), str):
        return str(last["hash"])
    if size == 0:
        return GENESIS
    # No chained entry at the end (a legacy log, or only a torn line): seal every byte before the new line.
    # A full read, but only once per log: every later append finds this entry.
    digest = hashlib.sha256()
    handle.seek(0)
    while block := handle.read(_BLOCK):
        digest.update(block)
    digest.update(lead)
    return digest.hexdigest()


def _last_entry(handle: IO[bytes], size: int) -> dict[str, Any] | None:
    """The last complete line that is a JSON object, read backwards from the end of the file."""
    for line in _complete_lines_reversed(handle, size):
        try:
            entry = json.loads(line)
        except ValueError:  # also UnicodeDecodeError: a torn or foreign line, not an entry to chain to
            continue
        if isinstance(entry, dict):
            return entry
    return None


def _complete_lines_reversed(handle: IO[bytes], size: int) -> Iterator[bytes]:
    """The newline-terminated lines of the file, last first, without their newline; bytes after the last
    newline are a torn write and are not a line. Reads backwards a block at a time, so finding the last
    entry costs one read of the file's end, not a read of the whole file."""
    end = _last_newline(handle, size)
    if end is None:
        return
    carry = b""  # the start of a line that began in an earlier block
    pos = end
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        handle.seek(pos)
        parts = (handle.read(step) + carry).split(b"\n")
        carry = parts.pop(0)
        yield from reversed(parts)
    yield carry


def _last_newline(handle: IO[bytes], size: int) -> int | None:
    pos = size
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        handle.seek(pos)
        found = handle.read(step).rfind(b"\n")
        if found >= 0:
            return pos + found
    return None


# ------------------------------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class Finding:
    """One thing wrong with (a problem) or worth knowing about (a warning) a line of the log.

    ``kind`` of a problem: edited, missing_or_reordered, chain_start, duplicate, unchained, chain_fields,
    not_json, not_object, head_missing; of a warning: torn, legacy.
    """

    line: int | None  # 1-based; None for the log as a whole
    kind: str
    message: str
    event: str | None = None
    ts: str | None = None

    def where(self) -> str:
        """``line 7 (promote, 2025-…)``: the line and the entry it holds, for a message."""
        if self.line is None:
            return "the log"
        about = ", ".join(str(part) for part in (self.event, self.ts) if part is not None)
        return f"line {self.line} ({about})" if about else f"line {self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, "event": self.event, "ts": self.ts, "message": self.message}


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found: ``ok`` when the chain holds; ``head`` is the last chained entry's hash."""

    path: Path
    entries: int  # chained entries checked
    legacy: int  # unchained entries before the chain (or in a log that has none)
    head: str | None
    head_line: int | None
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "entries": self.entries,
            "legacy_entries": self.legacy,
            "head": self.head,
            "head_line": self.head_line,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass
class _Line:
    number: int
    entry: dict[str, Any] | None  # None when the line is not a JSON object
    parsed: bool  # valid JSON (an object or not)
    terminated: bool  # ends with a newline
    torn_like: bool  # not JSON but starts like an entry: what a write cut short leaves
    start_digest: str  # what a first chained entry on this line must have as ``prev``


def _scan(handle: IO[bytes]) -> Iterator[_Line]:
    """The non-blank lines of the log, parsed, each with the digest of every byte before it."""
    before = hashlib.sha256()
    offset = 0
    for number, raw in enumerate(handle, start=1):
        start_digest = before.hexdigest() if offset else GENESIS
        before.update(raw)
        offset += len(raw)
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            yield _Line(number, None, False, raw.endswith(b"\n"), text.startswith(b"{"), start_digest)
            continue
        entry = value if isinstance(value, dict) else None
        yield _Line(number, entry, True, raw.endswith(b"\n"), False, start_digest)


def _finding(line: _Line, kind: str, message: str) -> Finding:
    entry = line.entry or {}
    event, ts = entry.get("event"), entry.get("ts")
    return Finding(line.number, kind, message, None if event is None else str(event), None if ts is None else str(ts))


def verify(path: Path, expect_head: str | None = None) -> VerifyResult:
    """Check the audit log's hash chain: every entry's hash, and every ``prev`` against the entry before.

    Changes nothing. A missing log is an intact, empty one. ``expect_head``, a head recorded earlier,
    must still be the hash of an entry: that is how deleted last entries are caught, which the chain
    alone cannot see (see the module's docstring). A torn last line, or a torn write the chain continues
    across, is what a crash leaves: a warning, not a problem. Raises OSError when the log cannot be read.
    """
    lines: list[_Line] = []
    if path.exists():
        with path.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)  # not while an append is half written
            lines = list(_scan(handle))
    chain = _Chain(lines)
    for line in lines:
        chain.check(line)
    return chain.result(path, expect_head)


class _Chain:
    """The walk of :func:`verify` over the lines, oldest first, collecting what it finds."""

    def __init__(self, lines: list[_Line]) -> None:
        self.hashes: dict[str, int] = {}  # the first line with each stored hash: hints about moved entries
        for line in lines:
            if line.entry is not None and isinstance(line.entry.get("hash"), str):
                self.hashes.setdefault(line.entry["hash"], line.number)
        self.problems: list[Finding] = []
        self.warnings: list[Finding] = []
        self.legacy: list[_Line] = []
        self.pending: list[_Line] = []  # torn-looking lines since the last entry: the entry after them judges
        self.last: tuple[int, str] | None = None  # line and hash of the last chained entry
        self.started = False  # an entry with chain fields was seen
        self.checked = 0

    def check(self, line: _Line) -> None:
        if line.entry is None:
            if line.parsed:
                self.problems.append(_finding(line, "not_object", "not a JSON object: no mloop entry looks like this"))
            elif line.torn_like:
                self.pending.append(line)
            else:
                self.problems.append(_finding(line, "not_json", "not JSON, and not a write cut short: foreign text"))
        elif not CHAIN_FIELDS & line.entry.keys():
            self._unchained(line)
        else:
            self._chained(line, line.entry)

    def _unchained(self, line: _Line) -> None:
        self._flush_torn()
        if not self.started:
            self.legacy.append(line)
            return
        message = "an entry without prev and hash after the chain began: added by hand, or its chain fields removed"
        self.problems.append(_finding(line, "unchained", message))

    def _chained(self, line: _Line, entry: dict[str, Any]) -> None:
        self.started = True
        prev, stored = entry.get("prev"), entry.get("hash")
        if not (isinstance(prev, str) and isinstance(stored, str)):
            self._flush_torn()
            self.problems.append(_finding(line, "chain_fields", "prev or hash is missing or not a string"))
            return
        self.checked += 1
        if entry_hash(entry) != stored:
            self.problems.append(
                _finding(line, "edited", "edited (hash mismatch): its content no longer matches its hash")
            )
        elif self.hashes[stored] != line.number:
            self.problems.append(_finding(line, "duplicate", f"a copy of line {self.hashes[stored]}"))
        if prev == (self.last[1] if self.last else line.start_digest):
            self._flush_torn()
        else:
            self.problems.append(_finding(line, *self._broken_link(line, prev)))
            message = "not JSON where the chain breaks: it may have replaced an entry"
            self.problems.extend(_finding(p, "not_json", message) for p in self.pending)
            self.pending = []
        # The stored hash, even of an edited entry: the next link is judged on its own.
        self.last = (line.number, stored)

    def _broken_link(self, line: _Line, prev: str) -> tuple[str, str]:
        """The kind and message of an entry whose ``prev`` is not the hash of the entry before it."""
        found = self.hashes.get(prev)
        if found is not None and found > line.number:
            hint = f"; it is the hash of line {found}, which comes after it"
        elif found is not None:
            hint = f"; it is the hash of line {found}"
        else:
            hint = "; no entry in the log has that hash: the entry it followed was deleted, or edited and re-hashed"
        if self.last is not None:
            return "missing_or_reordered", (
                f"previous entry missing or reordered (prev does not match line {self.last[0]}'s hash{hint})"
            )
        if self.legacy:
            return "chain_start", (
                f"the first chained entry no longer seals the {len(self.legacy)} legacy entries before it (prev "
                "is not the digest of the lines before it): one of them was edited, deleted or inserted since"
            )
        moved = f"; it is the hash of line {found}" if found is not None else ""
        return "chain_start", (
            f"the first entry is not the start of the chain (prev is not the genesis value{moved}): the entries "
            "before it were deleted, or the lines before it changed"
        )

    def _flush_torn(self, at_end: bool = False) -> None:
        for line in self.pending:
            if at_end and not line.terminated:
                message = "torn last line: a write cut short by a crash; it holds no complete entry"
            else:
                message = "torn write (not JSON) left by a crash; the chain continues intact across it"
            self.warnings.append(_finding(line, "torn", message))
        self.pending = []

    def result(self, path: Path, expect_head: str | None) -> VerifyResult:
        self._flush_torn(at_end=True)
        if self.legacy:
            first, final = self.legacy[0].number, self.legacy[-1].number
            span = f"line {first}" if first == final else f"lines {first}–{final}"
            sealed = "sealed as a block by the first chained entry" if self.started else "not protected by any chain"
            message = (
                f"{len(self.legacy)} unchained legacy entries ({span}), written before the log was chained: {sealed}"
            )
            self.warnings.insert(0, Finding(None, "legacy", message))
        if expect_head is not None and expect_head not in self.hashes:
            message = (
                f"the recorded head {expect_head} is not the hash of any entry: the entry it named, and any after "
                "it, were deleted, or the log was rewritten"
            )
            self.problems.append(Finding(None, "head_missing", message))
        head, head_line = (self.last[1], self.last[0]) if self.last else (None, None)
        problems = sorted(self.problems, key=lambda p: (p.line is None, p.line or 0))  # in the order of the file
        return VerifyResult(path, self.checked, len(self.legacy), head, head_line, problems, self.warnings)


__all__ = ["CHAIN_FIELDS", "GENESIS", "Finding", "VerifyResult", "append", "entry_hash", "read", "verify"]
