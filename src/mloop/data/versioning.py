"""Data versions with DVC: every accepted snapshot is added to DVC's cache and pushed to a remote.

A project is a DVC repository at its root (with git, or without one: ``no_scm``). Each snapshot gets
``<hash>.parquet.dvc`` beside it, so a snapshot can be restored from the cache or, once the cache is
gone, from the remote. DVC is optional (``pip install 'mloop[dvc]'``) and imported only here, lazily.

The functions take the project's root folder and its ``data`` settings (``mloop.config.DataConfig``),
not a ``Project``: the data layer sits below ``mloop.project``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from mloop.config import DataConfig
from mloop.data.snapshot import Snapshot
from mloop.errors import SourceError

REMOTE = "mloop"
Restored = Literal["workspace", "cache", "remote"]


def _repo_class() -> Any:
    """DVC's ``Repo``, imported on first use: DVC is an optional extra and slow to import."""
    try:
        # through importlib: DVC ships no type hints, and mypy settings belong to pyproject.toml
        return importlib.import_module("dvc.repo").Repo
    except ImportError:
        raise SourceError(
            "data versioning needs DVC: pip install 'mloop[dvc]', or set data.versioning: off in mloop.yaml "
            "(mloop init --no-dvc)."
        ) from None


def available() -> bool:
    try:
        _repo_class()
    except SourceError:
        return False
    return True


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """DVC prints to stdout (which would break ``--json``) and its dependencies warn about their own APIs."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            logger.setLevel(level)


def _dvc_error(action: str, exc: Exception) -> SourceError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError(f"DVC could not {action}: {first}")


def enabled(root: Path, data: DataConfig) -> bool:
    """Whether accepted snapshots go to DVC: always with ``versioning: dvc``, in a DVC repo with ``auto``."""
    mode = data.versioning
    return mode == "dvc" or (mode == "auto" and (root / ".dvc").is_dir())


def git_root(root: Path) -> Path | None:
    """The git work tree holding ``root``, if any."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "rev-parse", "--show-toplevel"],  # noqa: S607 - git from PATH, like DVC itself
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 else None


def init_repo(root: Path, remote: str | None = None, no_scm: bool = False) -> str:
    """Make ``root`` a DVC repository with a default remote; with git only if ``root`` is in a git work tree."""
    repo_class = _repo_class()
    root = root.resolve()
    work_tree = None if no_scm else git_root(root)
    # DVC stores a local path relative to .dvc/, so the project can move; it must be given absolute.
    url = remote or str(root / ".mloop" / "dvc-remote")
    try:
        with _quiet():
            repo = repo_class.init(str(root), no_scm=work_tree is None, subdir=work_tree not in (None, root))
            try:
                with repo.config.edit() as conf:
                    conf["core"]["analytics"] = False
                    conf["core"]["remote"] = REMOTE
                    conf["remote"][REMOTE] = {"url": url}
            finally:
                repo.close()
    except Exception as exc:  # noqa: BLE001 - DVC raises many types; each becomes one message
        raise _dvc_error(f"initialise a repository in {root}", exc) from None
    return "git" if work_tree else "no-scm"


@contextlib.contextmanager
def _repo(root: Path, data: DataConfig) -> Iterator[Any]:
    repo_class = _repo_class()
    remote = _configured_remote(root, data)
    if not (root / ".dvc").is_dir():
        init_repo(root, remote)
    with _quiet(), repo_class(str(root)) as repo:
        if remote:
            wanted: dict[str, str] = {"url": remote}
            endpoint = data.s3_endpoint_url
            if remote.startswith("s3://") and endpoint:
                wanted["endpointurl"] = endpoint  # credentials stay in the environment, never in .dvc/config
            if repo.config.get("remote", {}).get(REMOTE) != wanted:
                with repo.config.edit() as conf:  # data.dvc_remote in mloop.yaml wins over .dvc/config
                    conf["remote"][REMOTE] = wanted
        yield repo


def _configured_remote(root: Path, data: DataConfig) -> str | None:
    url = data.dvc_remote
    if url is None or "://" in url:
        return url
    return str((root / url).resolve())  # a folder, relative to mloop.yaml


def dvc_file(snapshot: Snapshot) -> Path:
    return Path(snapshot.path + ".dvc")


def track(root: Path, data: DataConfig, snapshot: Snapshot) -> Path:
    """``dvc add`` the snapshot and push it to the remote; a snapshot already tracked is left alone.

    ``root`` is the project's folder (the DVC repository, made if new), ``data`` its ``data`` settings.
    """
    target = dvc_file(snapshot)
    if target.is_file():
        return target
    with _repo(root, data) as repo:
        try:
            repo.add([snapshot.path])
            repo.push([str(target)], remote=REMOTE)
        except Exception as exc:  # noqa: BLE001
            hint = ""
            if "git-ignored" in str(exc):
                hint = " (.gitignore hides .mloop/snapshots; ignore '/.mloop/*' and add '!/.mloop/snapshots/')"
            raise _dvc_error(f"version snapshot {snapshot.hash[:12]}{hint}", exc) from None
    return target


def restore(root: Path, data: DataConfig, snapshot: Snapshot) -> Restored:
    """Bring back exactly the bytes of ``snapshot``: from the workspace, DVC's cache, or the remote."""
    target = dvc_file(snapshot)
    if not target.is_file():
        raise SourceError(f"snapshot {snapshot.hash[:12]} is not versioned by DVC (no {target}).")
    with _repo(root, data) as repo:
        status = repo.status([str(target)])
        if not status and Path(snapshot.path).is_file():
            return "workspace"
        try:
            repo.checkout([str(target)], force=True)
            return "cache"
        except Exception:  # noqa: BLE001, S110 - not in the cache: fetch it from the remote below
            pass
        try:
            repo.pull([str(target)], remote=REMOTE, force=True)
        except Exception as exc:  # noqa: BLE001
            raise _dvc_error(f"restore snapshot {snapshot.hash[:12]} from remote {REMOTE!r}", exc) from None
    return "remote"
