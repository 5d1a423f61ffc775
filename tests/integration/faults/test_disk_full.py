"""The fault matrix, column (e): the disk under ``.mloop/`` fills up.

The project's workspace (``.mloop/``: the MLflow store and artifacts, the audit log, the prediction log)
is a small tmpfs of its own, mounted for the test (root only: skipped elsewhere, never on CI, where
.ci/run runs as root). With a champion in place the rest of the volume is filled; `mloop train` and
`mloop promote` must then fail with a clear error, no traceback, and leave the state whole; once space
is freed, the same commands succeed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.cli import failed, mloop, ok
from tests.helpers.projects import early_sales, train_champion, write_project

from mloop.project import Project
from mloop.registry.versions import list_versions

from .test_sigkill import assert_invariants

pytestmark = pytest.mark.integration

VOLUME = "256m"


@contextlib.contextmanager
def _tmpfs(folder: Path) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs for a full disk ({done.stderr.decode().strip()}); needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(volume: Path) -> Path:
    """Fill ``volume`` to the last byte; the filler file, to delete to free the space."""
    filler = volume / "filler"
    with open(filler, "wb", buffering=0) as out:  # unbuffered: nothing left to flush on close
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.fixture
def project(tmp_path: Path, ames: pd.DataFrame) -> Iterator[Project]:
    root = tmp_path / "ames"
    with _tmpfs(root / ".mloop"):
        project = train_champion(write_project(root, early_sales(ames, 700), "ames-disk-full"))
        ok(mloop("train", project=project))
        ok(mloop("register", project=project))
        yield project


def test_a_full_workspace_fails_train_and_promote_cleanly_and_they_succeed_once_space_is_freed(
    project: Project,
) -> None:
    versions = [v.version for v in list_versions(project)]
    filler = _fill(project.workspace)
    assert_invariants(project)  # reading still works on a full disk

    for args in (("train",), ("promote", versions[-1], "--force", "--reason", "fault test")):
        message = failed(mloop(*args, project=project))
        assert "space" in message.lower() or "full" in message.lower(), message
    assert_invariants(project)
    assert [v.version for v in list_versions(project)] == versions

    filler.unlink()
    ok(mloop("train", project=project))
    ok(mloop("promote", versions[-1], "--force", "--reason", "fault test", project=project))
    assert assert_invariants(project) == versions[-1]
