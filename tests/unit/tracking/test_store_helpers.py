"""The tracking store's pure helpers: URIs shown without credentials, the PostgreSQL driver, the git commit,
and the model's input schema as a run records it."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mloop.data.contract import ColumnSpec, Contract
from mloop.errors import TrackingError
from mloop.tracking import runs, store
from mloop.tracking.store import git_sha, safe_uri, sqlalchemy_url

# ----------------------------------------------------------------------------------- safe_uri


def test_safe_uri_hides_the_user_info_and_nothing_else() -> None:
    hidden = {
        "postgresql://mloop:s3cret@db.internal:5432/mlflow": "postgresql://***@db.internal:5432/mlflow",
        "postgresql+psycopg://mloop:p@ss@s3cret@db/mlflow": "postgresql+psycopg://***@db/mlflow",  # '@' in it
        "https://s3cret-token@mlflow.example.com/": "https://***@mlflow.example.com/",
        "mysql://user@db/mlflow": "mysql://***@db/mlflow",  # a user name alone is hidden too
    }
    assert {uri: safe_uri(uri) for uri in hidden} == hidden
    plain = ["sqlite:////srv/project/.mloop/mlflow.db", "http://127.0.0.1:5000", "databricks", "/srv/mlruns"]
    assert [safe_uri(uri) for uri in plain] == plain


def test_safe_uri_hides_a_password_passed_as_a_query_parameter() -> None:
    assert "s3cret" not in safe_uri("postgresql://db.internal/mlflow?user=mloop&password=s3cret")


def test_safe_uri_keeps_an_at_sign_in_the_path_of_a_uri_without_user_info() -> None:
    assert safe_uri("file:///srv/team@site/mlruns") == "file:///srv/team@site/mlruns"


# ------------------------------------------------------------------------------ sqlalchemy_url


@pytest.fixture
def drivers(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``drivers("psycopg2")``: make only these PostgreSQL drivers look installed."""

    def install(*names: str) -> None:
        real = importlib.util.find_spec

        def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
            if name in ("psycopg", "psycopg2"):
                return object() if name in names else None
            return real(name, *args, **kwargs)

        monkeypatch.setattr(store.importlib.util, "find_spec", find_spec)

    return install


def test_a_postgresql_uri_gets_psycopg_3_or_else_psycopg2(drivers: Callable[..., None]) -> None:
    drivers("psycopg", "psycopg2")
    assert sqlalchemy_url("postgresql://u:pw@db:5432/mlflow") == "postgresql+psycopg://u:pw@db:5432/mlflow"
    assert sqlalchemy_url("postgres://u@db/mlflow") == "postgresql+psycopg://u@db/mlflow"  # the short scheme too
    drivers("psycopg2")
    assert sqlalchemy_url("postgresql://u@db/mlflow") == "postgresql+psycopg2://u@db/mlflow"


def test_without_a_driver_the_error_names_the_extra_and_hides_the_password(drivers: Callable[..., None]) -> None:
    drivers()
    with pytest.raises(TrackingError) as caught:
        sqlalchemy_url("postgresql://mloop:s3cret@db/mlflow")
    assert "pip install 'mloop[postgres]'" in caught.value.message
    assert "s3cret" not in caught.value.message and "db/mlflow" in caught.value.message


def test_other_uris_pass_through_unchanged(drivers: Callable[..., None]) -> None:
    drivers()  # no driver is looked up for these
    uris = [
        "postgresql+psycopg2://u@db/mlflow",  # an explicit driver is kept as written
        "postgresql+psycopg://u@db/mlflow",
        "sqlite:///x.db",
        "mysql+pymysql://u@db/mlflow",
        "http://127.0.0.1:5000",
    ]
    assert [sqlalchemy_url(uri) for uri in uris] == uris


# ------------------------------------------------------------------------------------ git_sha


@pytest.fixture
def no_git_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path, where git looks no further up for a repository."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_git_sha_is_none_outside_a_work_tree_or_without_git(
    no_git_above: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = no_git_above / "project"
    folder.mkdir()
    assert git_sha(folder) is None
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    assert git_sha(folder) is None  # a repository without a commit has no HEAD yet
    monkeypatch.setenv("PATH", str(no_git_above))  # no git executable at all
    assert git_sha(folder) is None


def test_git_sha_is_the_commit_the_project_is_at(no_git_above: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = no_git_above / "project"
    (folder / "sub").mkdir(parents=True)
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "test")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "test@example.com")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    sha = git("commit-tree", git("write-tree"), "-m", "empty")  # plumbing: a commit of the empty tree
    git("update-ref", "HEAD", sha)
    assert len(sha) == 40
    assert git_sha(folder) == sha
    assert git_sha(folder / "sub") == sha  # any folder inside the work tree


# ---------------------------------------------------------------------------------- runs.py


def test_the_input_schema_comes_from_the_contract_not_from_examples() -> None:
    contract = Contract(
        target="price",
        columns={
            "rooms": ColumnSpec(dtype="integer", nullable=False),
            "garage": ColumnSpec(dtype="integer", nullable=True),  # a nullable integer arrives as a float
            "area": ColumnSpec(dtype="float", nullable=False),
            "street": ColumnSpec(dtype="string", nullable=True),
            "sold": ColumnSpec(dtype="datetime", nullable=False),
            "price": ColumnSpec(dtype="float", role="target"),
        },
    )
    schema = runs.input_schema(contract, ["street", "rooms", "garage", "area", "sold"])
    assert schema.to_dict() == [
        {"type": "string", "name": "street", "required": False},
        {"type": "long", "name": "rooms", "required": True},
        {"type": "double", "name": "garage", "required": False},
        {"type": "double", "name": "area", "required": True},
        {"type": "string", "name": "sold", "required": True},
    ]
