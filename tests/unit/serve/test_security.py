"""API keys: where they come from, how they are presented and compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import ServeError
from mloop.serve import security
from mloop.serve.security import ApiKeys, parse_keys, presented_key


def test_keys_come_from_the_environment_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").write_text("# ops team\nfile-key\n\n", encoding="utf-8")
    monkeypatch.setenv("TEST_KEYS", " env-a , env-b,")
    keys = ApiKeys.load("TEST_KEYS", tmp_path / "keys")
    assert keys.enabled
    assert all(keys.check(k) for k in ("env-a", "env-b", "file-key"))
    assert not any(keys.check(k) for k in ("", "# ops team", "env-a ", "ENV-A", None))


def test_no_keys_means_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_KEYS", raising=False)
    keys = ApiKeys.load("TEST_KEYS", None)
    assert not keys.enabled and not keys.check("anything")


def test_an_unreadable_key_file_is_an_error_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="cannot read the API key file"):
        ApiKeys.load("TEST_KEYS_UNSET", tmp_path / "missing")


def test_a_key_is_read_from_either_header() -> None:
    assert presented_key([(b"x-api-key", b" k1 ")]) == "k1"
    assert presented_key([(b"authorization", b"Bearer k2")]) == "k2"
    assert presented_key([(b"authorization", b"bearer k3")]) == "k3"
    assert presented_key([(b"authorization", b"Basic dXNlcg==")]) is None
    assert presented_key([]) is None


def test_scoped_keys_carry_their_scopes_and_bare_keys_all_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "keys").write_text("predict:p-key\nfeedback:f-key\nadmin:a-key\npredict:both\nfeedback:both\nold\n")
    monkeypatch.setenv("TEST_KEYS", "admin:env-admin")
    with caplog.at_level("WARNING"):
        keys = ApiKeys.load("TEST_KEYS", tmp_path / "keys")
    assert keys.scopes_of("p-key") == {"predict"} and keys.scopes_of("env-admin") == {"admin"}
    assert keys.scopes_of("both") == {"predict", "feedback"}
    assert keys.scopes_of("old") == security.SCOPES  # a bare key keeps its old meaning ...
    assert "1 API key(s) without a scope" in caplog.text and "line 6" in caplog.text  # ... with a warning
    assert keys.scopes_of("nope") is None and keys.scopes_of(None) is None
    assert keys.check("p-key", "predict") and not keys.check("p-key", "admin") and keys.check("a-key")
    assert all(k not in caplog.text for k in ("p-key", "a-key", "old"))


def test_keys_are_held_hashed_not_in_the_clear(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("predict:s3cret-value\n")
    keys = ApiKeys.load("TEST_KEYS_UNSET", tmp_path / "keys")
    assert b"s3cret-value" not in repr(vars(keys)).encode() and "s3cret-value" not in repr(vars(keys))


@pytest.mark.parametrize(
    ("line", "problem"), [("admn:xyz", "unknown API key scope 'admn'"), ("admin:", "without a key")]
)
def test_a_mistyped_scope_is_an_error_naming_the_line_not_the_key(line: str, problem: str) -> None:
    with pytest.raises(ServeError, match=problem) as error:
        parse_keys(["# c", line], "keys line")
    assert "keys line 2" in str(error.value) and "xyz" not in str(error.value)


def test_the_key_file_is_reread_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "keys"
    file.write_text("predict:first\n")
    monkeypatch.setattr(security, "RECHECK_SECONDS", 0.0)
    keys = ApiKeys.load("TEST_KEYS_UNSET", file)
    assert keys.check("first")
    file.write_text("predict:second\nadmin:third\n")  # a rotation: a different size, so a different stamp
    assert keys.check("second") and keys.check("third", "admin") and not keys.check("first")
    file.write_text("not a scope:x\nadmn:broken\n")  # malformed: the last good keys stay in force
    assert keys.check("second") and not keys.check("broken")
    file.unlink()  # gone: likewise
    assert keys.check("second")
    file.write_text("# every key removed\n")
    assert keys.enabled and not keys.check("second")  # an empty file refuses everything, never serves open
