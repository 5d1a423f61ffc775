"""The fault matrix, column (b): PostgreSQL, the MLflow backend, stops in the middle of an operation.

The project's tracking store is a fresh database in the local PostgreSQL, reached through a proxy the
test cuts (``tests.helpers.faults.CuttableProxy``): for mloop the database is gone (connections reset,
new ones refused) while the real server stays up for the rest of the suite. The command is held at a
step boundary, the database cut, the command let go: it must fail with a clear error and leave the state
whole; with the database back, the same command succeeds. (The prediction log's own PostgreSQL outage is
``tests/integration/serve/test_log_no_loss.py``.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.cli import mloop, ok
from tests.helpers.faults import CuttableProxy, through_an_outage
from tests.helpers.projects import early_sales, train_champion, write_project

from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version, list_versions

from .test_sigkill import assert_invariants

pytestmark = pytest.mark.integration

PG = ("127.0.0.1", 5432)


@pytest.fixture(scope="module")
def proxy() -> Iterator[CuttableProxy]:
    import psycopg

    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc}); apt-get install postgresql")
    with CuttableProxy(PG) as running:
        yield running


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    import psycopg

    name = f"mloop_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def project(
    proxy: CuttableProxy, database: str, tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("pg-store") / "ames"
    uri = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
    here = Path.cwd()
    os.chdir(root.parent)  # the experiment's default artifact root (./mlruns) is resolved here, not in the repo
    try:
        yield train_champion(write_project(root, early_sales(ames, 700), "ames-pg-down", tracking={"uri": uri}))
    finally:
        os.chdir(here)


def test_register_with_the_database_down_creates_nothing_and_succeeds_once_it_is_back(
    proxy: CuttableProxy, project: Project, tmp_path: Path
) -> None:
    ok(mloop("train", project=project, cwd=project.root))
    before = [v.version for v in list_versions(project)]
    through_an_outage(
        project, "register:before-create", ("register",), proxy.cut, tmp_path, "PostgreSQL", cwd=project.root
    )
    proxy.restore()
    assert [v.version for v in list_versions(project)] == before
    assert_invariants(project)
    ok(mloop("register", project=project, cwd=project.root))
    assert len(list_versions(project)) == len(before) + 1
    assert_invariants(project)


def test_promote_with_the_database_down_leaves_the_champion_and_succeeds_once_it_is_back(
    proxy: CuttableProxy, project: Project, tmp_path: Path
) -> None:
    ok(mloop("train", project=project, cwd=project.root))
    ok(mloop("register", project=project, cwd=project.root))
    newest = list_versions(project)[-1].version
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version != newest
    args = ("promote", newest, "--force", "--reason", "fault test")
    through_an_outage(project, "promote:after-gate", args, proxy.cut, tmp_path, "PostgreSQL", cwd=project.root)
    proxy.restore()
    assert assert_invariants(project) == champion.version
    ok(mloop(*args, project=project, cwd=project.root))
    assert assert_invariants(project) == newest
