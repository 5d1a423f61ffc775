"""`mloop audit verify` as a user runs it, on a project's audit log: 0 when the chain holds, the registry's
exit code and a message naming the line and the entry when it does not. No training: the entries are
appended the way the gate appends them."""

from __future__ import annotations

import json
from pathlib import Path

from mloop.cli.main import exit_code
from mloop.errors import AuditChainBroken
from mloop.project import Project
from mloop.registry import audit
from tests.helpers.cli import failed, mloop, ok
from tests.helpers.projects import write_config


def audited_project(root: Path) -> Project:
    proj = write_config(root / "houses", {"name": "houses", "data": {"source": "train.csv", "target": "Sale_Price"}})
    for version, previous in (("1", None), ("2", "1"), ("3", "2")):
        audit.append(proj.audit_log, "promote", model="houses", version=version, previous=previous, reason="gate")
    audit.append(proj.audit_log, "rollback", model="houses", version="2", previous="3", reason="bad night")
    return proj


def test_audit_verify_passes_on_an_intact_log_and_prints_its_head(tmp_path: Path) -> None:
    proj = audited_project(tmp_path)
    done = ok(mloop("audit", "verify", cwd=proj.root), quiet=True)
    assert "audit log intact: 4 chained entries" in done.stdout
    report = json.loads(ok(mloop("audit", "verify", "--json", project=proj)).stdout)
    assert report["ok"] is True and report["entries"] == 4 and report["problems"] == []
    assert report["head"] == audit.read(proj.audit_log)[-1]["hash"] and report["head_line"] == 4


def test_audit_verify_fails_on_an_edited_line_naming_it(tmp_path: Path) -> None:
    proj = audited_project(tmp_path)
    lines = proj.audit_log.read_text(encoding="utf-8").splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["reason"] = "nobody looked"  # line 2, the promotion of version 2, rewritten after the fact
    lines[1] = json.dumps(entry, sort_keys=True) + "\n"
    proj.audit_log.write_text("".join(lines), encoding="utf-8")

    done = mloop("audit", "verify", cwd=proj.root)
    err = failed(done)
    assert done.returncode == exit_code(AuditChainBroken) == 7
    assert f"line 2 (promote, {entry['ts']})" in err and "edited (hash mismatch)" in err
    assert "problem: line 2 (promote" in done.stdout

    as_json = mloop("audit", "verify", "--json", cwd=proj.root)
    assert as_json.returncode == 7
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert [(p["line"], p["kind"], p["event"]) for p in report["problems"]] == [(2, "edited", "promote")]


def test_audit_verify_with_a_recorded_head_catches_a_deleted_last_entry(tmp_path: Path) -> None:
    proj = audited_project(tmp_path)
    head = audit.verify(proj.audit_log).head
    assert head is not None
    lines = proj.audit_log.read_text(encoding="utf-8").splitlines(keepends=True)
    backup = tmp_path / "backup.jsonl"
    backup.write_text("".join(lines[:-1]), encoding="utf-8")  # the rollback is gone
    err = failed(mloop("audit", "verify", "--log", str(backup), "--expect-head", head.upper()))
    assert f"the recorded head {head} is not the hash of any entry" in err
    usage = failed(mloop("audit", "verify", "--expect-head", "abc", cwd=proj.root))
    assert "Invalid value for '--expect-head'" in usage
