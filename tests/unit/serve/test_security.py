"""API keys: where they come from, how they are presented and compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import ServeError
from mloop.serve.security import ApiKeys, presented_key


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
