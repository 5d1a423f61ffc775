"""The audit log as a hash chain: every entry carries the hash of the one before it, and ``verify`` names
each entry that was edited, deleted, inserted or moved, while a crash's torn line and a log written before
chaining are told apart from tampering."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO, Any

import pytest

from mloop.registry import audit
from mloop.registry.audit import GENESIS, Finding, VerifyResult


def write_log(log: Path, n: int = 5) -> list[str]:
    """``n`` chained entries (promote of versions 1…n); the file's lines, each with its newline."""
    for version in range(1, n + 1):
        audit.append(log, "promote", model="houses", version=str(version), reason=f"gate passed {version}")
    return log.read_text(encoding="utf-8").splitlines(keepends=True)


def kinds(result: VerifyResult) -> list[tuple[int | None, str]]:
    return [(p.line, p.kind) for p in result.problems]


def only_problem(result: VerifyResult) -> Finding:
    assert not result.ok
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


def edit(line: str, **changes: Any) -> str:
    entry = json.loads(line)
    entry.update(changes)
    return json.dumps(entry, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------ the chain


def test_each_entry_carries_the_hash_of_the_one_before(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 4)
    entries = audit.read(log)
    assert entries[0]["prev"] == GENESIS
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    assert all(e["hash"] == audit.entry_hash(e) for e in entries)
    assert len({e["hash"] for e in entries}) == 4


def test_the_hash_is_sha256_of_the_canonical_json_without_it(tmp_path: Path) -> None:
    import hashlib

    entry = audit.append(tmp_path / "audit.jsonl", "rollback", reason="ünïcode", extra={"b": 1, "a": [1.5, None]})
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert entry["hash"] == hashlib.sha256(canonical.encode("ascii")).hexdigest()


def test_an_intact_log_verifies_and_names_its_head(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 5)
    result = audit.verify(log)
    assert result.ok and result.problems == [] and result.warnings == []
    assert (result.entries, result.legacy, result.head_line) == (5, 0, 5)
    assert result.head == audit.read(log)[-1]["hash"]
    assert result.to_dict()["ok"] is True and result.to_dict()["head"] == result.head


def test_a_missing_log_is_an_intact_empty_one(tmp_path: Path) -> None:
    result = audit.verify(tmp_path / "audit.jsonl")
    assert result.ok and result.entries == 0 and result.head is None


def test_the_chain_fields_cannot_be_passed_as_entry_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chain fields"):
        audit.append(tmp_path / "audit.jsonl", "promote", hash="forged")
    assert not (tmp_path / "audit.jsonl").exists()


# ------------------------------------------------------------------------------------------ tampering


def test_an_edited_field_fails_naming_the_line_and_the_entry(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 5)
    lines[2] = edit(lines[2], version="99")  # line 3: promote of version 3 now says 99
    log.write_text("".join(lines), encoding="utf-8")
    problem = only_problem(audit.verify(log))
    assert (problem.line, problem.kind, problem.event) == (3, "edited", "promote")
    assert problem.ts == json.loads(lines[2])["ts"]
    assert "edited (hash mismatch)" in problem.message
    assert problem.where() == f"line 3 (promote, {problem.ts})"


def test_an_edited_and_rehashed_entry_is_named_by_the_next_one(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 5)
    forged = json.loads(edit(lines[2], version="99"))
    forged["hash"] = audit.entry_hash(forged)  # the forger recomputes the entry's own hash
    lines[2] = json.dumps(forged, sort_keys=True) + "\n"
    log.write_text("".join(lines), encoding="utf-8")
    problem = only_problem(audit.verify(log))
    assert (problem.line, problem.kind) == (4, "missing_or_reordered")
    assert "prev does not match line 3's hash" in problem.message


def test_a_deleted_middle_entry_is_named_by_the_entry_after_the_gap(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 5)
    del lines[2]  # the promote of version 3
    log.write_text("".join(lines), encoding="utf-8")
    problem = only_problem(audit.verify(log))
    assert (problem.line, problem.kind, problem.event) == (3, "missing_or_reordered", "promote")
    assert "previous entry missing or reordered (prev does not match line 2's hash" in problem.message
    assert "no entry in the log has that hash" in problem.message


def test_a_deleted_first_entry_breaks_the_start_of_the_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 3)
    log.write_text("".join(lines[1:]), encoding="utf-8")
    problem = only_problem(audit.verify(log))
    assert (problem.line, problem.kind) == (1, "chain_start")
    assert "genesis" in problem.message


def test_reordered_entries_fail_and_say_where_each_belongs(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 5)
    lines[1], lines[2] = lines[2], lines[1]
    log.write_text("".join(lines), encoding="utf-8")
    result = audit.verify(log)
    assert kinds(result) == [(2, "missing_or_reordered"), (3, "missing_or_reordered"), (4, "missing_or_reordered")]
    assert "it is the hash of line 3, which comes after it" in result.problems[0].message
    assert all(p.kind != "edited" for p in result.problems)  # every entry is as written, only the order is not


def test_a_copied_entry_is_named_as_a_copy(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 3)
    lines.insert(2, lines[1])
    log.write_text("".join(lines), encoding="utf-8")
    result = audit.verify(log)
    assert (3, "duplicate") in kinds(result)
    assert next(p for p in result.problems if p.kind == "duplicate").message == "a copy of line 2"


def test_an_unchained_entry_after_the_chain_began_is_tampering(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 3)
    entry = json.loads(lines[1])
    del entry["prev"], entry["hash"]
    lines[1] = json.dumps(entry) + "\n"
    log.write_text("".join(lines), encoding="utf-8")
    assert kinds(audit.verify(log)) == [(2, "unchained"), (3, "missing_or_reordered")]


def test_foreign_lines_fail_but_cannot_hide_a_replaced_entry(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 4)
    foreign = [*lines[:1], "hello\n", "[1, 2]\n", *lines[1:]]
    log.write_text("".join(foreign), encoding="utf-8")
    assert kinds(audit.verify(log)) == [(2, "not_json"), (3, "not_object")]

    lines[1] = '{"event": "promote", "version": "2", garbled\n'  # an entry overwritten with what looks torn
    log.write_text("".join(lines), encoding="utf-8")
    result = audit.verify(log)
    assert kinds(result) == [(2, "not_json"), (3, "missing_or_reordered")]
    assert "may have replaced an entry" in result.problems[0].message


# ------------------------------------------------------------------------------------------ crashes


def test_a_torn_last_line_is_a_crash_not_tampering(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 3)
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"event": "promote", "ts": "2025-')  # the process died here
    result = audit.verify(log)
    assert result.ok and result.entries == 3
    assert [(w.line, w.kind) for w in result.warnings] == [(4, "torn")]
    assert result.warnings[0].message.startswith("torn last line")


def test_an_append_after_a_torn_line_chains_to_the_last_complete_entry(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 3)
    last = audit.read(log)[-1]
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"event": "promote", "ts": "2025-')
    entry = audit.append(log, "rollback", model="houses", version="2")
    assert entry["prev"] == last["hash"]
    assert log.read_text(encoding="utf-8").splitlines()[-1] == json.dumps(entry, sort_keys=True)  # a line of its own
    result = audit.verify(log)
    assert result.ok and result.entries == 4 and result.head == entry["hash"]
    assert [(w.line, w.kind) for w in result.warnings] == [(4, "torn")]
    assert "the chain continues intact across it" in result.warnings[0].message


def test_a_torn_first_write_still_starts_a_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text('{"event": "prom', encoding="utf-8")
    audit.append(log, "promote", version="1")
    audit.append(log, "promote", version="2")
    result = audit.verify(log)
    assert result.ok and result.entries == 2 and [w.kind for w in result.warnings] == ["torn"]


def test_blank_lines_are_no_entries_and_no_problem(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 2)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("\n   \n")
    audit.append(log, "promote", version="3")
    result = audit.verify(log)
    assert result.ok and result.entries == 3 and result.warnings == []


# ------------------------------------------------------------------------------------------ legacy logs


LEGACY = [
    {"ts": "2025-01-01T00:00:00.000+00:00", "event": "promote", "user": "ci", "version": "1"},
    {"ts": "2025-01-02T00:00:00.000+00:00", "event": "reject", "user": "ci", "version": "2"},
]


def write_legacy(log: Path) -> None:
    log.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in LEGACY), encoding="utf-8")


def test_a_log_from_before_chaining_is_read_and_counted_as_legacy(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_legacy(log)
    result = audit.verify(log)
    assert result.ok and (result.entries, result.legacy, result.head) == (0, 2, None)
    assert result.warnings[0].message == (
        "2 unchained legacy entries (lines 1–2), written before the log was chained: not protected by any chain"
    )


def test_the_chain_starts_after_legacy_entries_and_seals_them(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_legacy(log)
    legacy_bytes = log.read_bytes()
    first = audit.append(log, "promote", version="3")
    audit.append(log, "rollback", version="2")
    import hashlib

    assert first["prev"] == hashlib.sha256(legacy_bytes).hexdigest()
    assert [e["event"] for e in audit.read(log)] == ["promote", "reject", "promote", "rollback"]  # read as before
    result = audit.verify(log)
    assert result.ok and (result.entries, result.legacy) == (2, 2)
    assert "2 unchained legacy entries (lines 1–2)" in result.warnings[0].message
    assert "sealed as a block by the first chained entry" in result.warnings[0].message

    log.write_bytes(log.read_bytes().replace(b'"reject"', b'"promote"', 1))  # a legacy entry edited afterwards
    problem = only_problem(audit.verify(log))
    assert (problem.line, problem.kind) == (3, "chain_start")
    assert "no longer seals the 2 legacy entries before it" in problem.message


# ------------------------------------------------------------------------------------------ the head


def test_a_recorded_head_catches_a_deleted_last_entry(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = write_log(log, 4)
    head = audit.verify(log).head
    assert head is not None
    log.write_text("".join(lines[:-1]), encoding="utf-8")
    assert audit.verify(log).ok  # the chain alone cannot see it: a shorter chain is still a chain
    problem = only_problem(audit.verify(log, expect_head=head))
    assert (problem.line, problem.kind) == (None, "head_missing")
    assert head in problem.message and "deleted" in problem.message


def test_a_recorded_head_still_verifies_after_more_appends(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 2)
    head = audit.verify(log).head
    audit.append(log, "rollback", version="1")
    result = audit.verify(log, expect_head=head)
    assert result.ok and result.head != head


def test_a_recorded_head_fails_on_a_missing_log(tmp_path: Path) -> None:
    assert [p.kind for p in audit.verify(tmp_path / "audit.jsonl", expect_head="a" * 64).problems] == ["head_missing"]


# ------------------------------------------------------------------------------------------ writers


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mloop.registry import audit

    log, go, name, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        audit.append(log, "retrain_decision", writer=name, i=i)
    """
)


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    log, go = tmp_path / "audit.jsonl", tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(go), f"w{k}", "50"])  # noqa: S603
        for k in range(4)
    ]
    try:
        time.sleep(0.3)  # every writer is waiting: they start appending at once
        go.touch()
        codes = [w.wait(timeout=120) for w in writers]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert codes == [0, 0, 0, 0]
    result = audit.verify(log)
    assert result.ok, result.problems
    assert result.entries == 200 and result.warnings == []
    entries = audit.read(log)
    assert len({e["prev"] for e in entries}) == 200  # no two entries chain to the same one: no fork
    assert {(e["writer"], e["i"]) for e in entries} == {(f"w{k}", i) for k in range(4) for i in range(50)}
    writers_seen = [e["writer"] for e in entries]
    assert any(a != b for a, b in zip(writers_seen, writers_seen[1:], strict=False))  # they did interleave


class CountingFile:
    """A file object that counts the bytes read through it."""

    def __init__(self, handle: IO[bytes], counter: list[int]) -> None:
        self._handle, self._counter = handle, counter

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def test_append_reads_the_end_of_the_log_not_all_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 1)
    big = "x" * 2000
    for i in range(800):  # about 1.7 MB
        audit.append(log, "retrain_decision", i=i, notes=big)
    size = log.stat().st_size
    counter = [0]
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        return CountingFile(real_open(self, *args, **kwargs), counter)

    monkeypatch.setattr(Path, "open", counting_open)
    entry = audit.append(log, "promote", version="2")
    monkeypatch.undo()
    assert counter[0] < 3 * audit._BLOCK < size
    assert entry["prev"] == audit.read(log)[-2]["hash"]


def test_reading_back_across_block_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "_BLOCK", 7)  # every line spans several blocks of the backward read
    log = tmp_path / "audit.jsonl"
    write_legacy(log)
    write_log(log, 6)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("\n\n" + '{"event": "to')
    audit.append(log, "rollback", version="5")
    result = audit.verify(log)
    assert result.ok and (result.entries, result.legacy) == (7, 2)
