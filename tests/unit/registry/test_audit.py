"""The audit log: one JSON line per decision, appended and fsynced, read back in the order written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mloop.registry import audit


def test_entries_are_read_back_in_the_order_they_were_appended(tmp_path: Path) -> None:
    log = tmp_path / ".mloop" / "audit.jsonl"  # the folder does not exist yet: append makes it
    written = [
        audit.append(log, "promote", model="houses", version="1", previous=None),
        audit.append(log, "reject", model="houses", version="2", previous="1"),
        audit.append(log, "rollback", model="houses", version="1", previous="2", reason="bad night"),
    ]
    entries = audit.read(log)
    assert entries == written  # what append returns is exactly what is stored
    assert [(e["event"], e["version"]) for e in entries] == [("promote", "1"), ("reject", "2"), ("rollback", "1")]
    assert all({"ts", "event", "user"} <= e.keys() for e in entries)
    stamps = [datetime.fromisoformat(e["ts"]) for e in entries]
    assert stamps == sorted(stamps)
    assert all(s.utcoffset() == timedelta(0) for s in stamps)  # UTC
    assert abs(datetime.now(UTC) - stamps[-1]) < timedelta(minutes=5)


def test_each_entry_is_one_line_appended_after_the_others(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append(log, "promote", reason="first line\nsecond line", gate={"checks": [{"name": "latency"}]})
    before = log.read_bytes()
    audit.append(log, "rollback", reason="plain")
    after = log.read_bytes()
    assert after.startswith(before) and after.endswith(b"\n")  # earlier lines are never rewritten
    lines = after.decode("utf-8").splitlines()
    assert len(lines) == 2  # a newline inside a value stays escaped on its line
    assert json.loads(lines[0])["reason"] == "first line\nsecond line"
    assert audit.read(log)[0]["gate"] == {"checks": [{"name": "latency"}]}


def test_values_json_cannot_hold_are_stored_as_text(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    audit.append(log, "retrain", data=Path("/srv/data.csv"), at=when)
    (entry,) = audit.read(log)
    assert entry["data"] == "/srv/data.csv"
    assert entry["at"] == str(when)


def test_a_missing_log_reads_as_empty_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    assert audit.read(log) == []
    audit.append(log, "promote", version="1")
    with log.open("a", encoding="utf-8") as handle:
        handle.write("\n   \n")
    audit.append(log, "promote", version="2")
    assert [e["version"] for e in audit.read(log)] == ["1", "2"]


def test_the_user_is_unknown_when_the_system_cannot_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr(audit.getpass, "getuser", no_user)
    assert audit.append(tmp_path / "audit.jsonl", "promote")["user"] == "unknown"


def test_a_torn_last_line_does_not_swallow_the_next_decision(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append(log, "promote", model="houses", version="1", previous=None)
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"event": "promote", "ts": "2025-')  # the process died here
    audit.append(log, "promote", model="houses", version="2", previous="1")
    versions = [e.get("version") for e in audit.read(log)]
    assert versions[0] == "1" and versions[-1] == "2"
