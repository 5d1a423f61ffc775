"""Prepare a project folder for the image: ``python3 bake.py SOURCE DEST PINS`` (run by the Dockerfile).

Copies from SOURCE to DEST what serving reads: the YAML files beside mloop.yaml and, in the ``.mloop/``
workspace, the MLflow store (``mlflow.db`` and ``artifacts/``), the audit log and the latest monitoring
gauges; an empty ``.mloop/`` when SOURCE has none. Left out: training data, snapshots, quarantined batches
and the prediction log of wherever the project ran before (rows of production traffic have no place in an
image), and any API key file.

A local MLflow store records absolute paths (``file:///home/me/proj/.mloop/artifacts/...``), so the
project's old root is replaced by DEST in every text value of ``mlflow.db`` and in the ``MLmodel``
files; nothing outside DEST is then referenced. Writes PINS: the project's ``constraints.txt`` if it
has one, else an empty file. Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlparse

WORKSPACE = ".mloop"
KEEP_IN_WORKSPACE = ("mlflow.db", "mlflow.db-wal", "artifacts", "audit.jsonl", "monitor")
ARTIFACTS_SUFFIX = f"/{WORKSPACE}/artifacts"


def fail(message: str) -> NoReturn:
    print(f"bake: {message}", file=sys.stderr)  # noqa: T201 - a build step's output
    raise SystemExit(1)


def copy_project(source: Path, dest: Path) -> None:
    if not (source / "mloop.yaml").is_file():
        fail(f"no mloop.yaml in the project build context ({sorted(p.name for p in source.iterdir())})")
    dest.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            shutil.copy2(path, dest / path.name)
    # The workspace folder is always there, even for a project without one: it is where a writable volume is
    # mounted when the root filesystem is read-only, and the image's user owns it (a new volume takes that over).
    (dest / WORKSPACE).mkdir()
    workspace = source / WORKSPACE
    if not workspace.is_dir():
        return
    for name in KEEP_IN_WORKSPACE:
        path = workspace / name
        if path.is_dir():
            shutil.copytree(path, dest / WORKSPACE / name)
        elif path.is_file():
            shutil.copy2(path, dest / WORKSPACE / name)


def _path_of(location: str) -> str:
    return unquote(urlparse(location).path) if location.startswith("file:") else location


def old_roots(db: sqlite3.Connection) -> set[str]:
    """The project roots the store's experiments were created under (``<root>/.mloop/artifacts``)."""
    roots = set()
    for (location,) in db.execute("SELECT artifact_location FROM experiments"):
        path = _path_of(location or "").rstrip("/")
        if path.endswith(ARTIFACTS_SUFFIX):
            roots.add(path[: -len(ARTIFACTS_SUFFIX)])
    return roots


def relocate_store(dest: Path) -> None:
    """Replace the store's old project root by ``dest`` in every text value and MLmodel file."""
    db_path = dest / WORKSPACE / "mlflow.db"
    if not db_path.is_file():
        return
    db = sqlite3.connect(db_path)
    try:
        pairs = []
        for root in sorted(old_roots(db)):
            if root != str(dest):
                pairs += [(Path(root).as_uri() + "/", dest.as_uri() + "/"), (root + "/", f"{dest}/")]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        changed = 0
        for table in tables:
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                for old, new in pairs:
                    cursor = db.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '  # noqa: S608 - names from the schema
                        f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                        (old, new, old),
                    )
                    changed += cursor.rowcount
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    (dest / WORKSPACE / "mlflow.db-wal").unlink(missing_ok=True)
    for mlmodel in (dest / WORKSPACE / "artifacts").rglob("MLmodel"):
        text = mlmodel.read_text(encoding="utf-8")
        for old, new in pairs:
            text = text.replace(old, new)
        mlmodel.write_text(text, encoding="utf-8")
    moved = ", ".join(old for old, _ in pairs[1::2]) or "nothing to move"
    print(f"bake: MLflow store moved to {dest} ({moved}; {changed} values)")  # noqa: T201


def main(source: Path, dest: Path, pins: Path) -> None:
    copy_project(source, dest)
    relocate_store(dest)
    pins.parent.mkdir(parents=True, exist_ok=True)
    constraints = source / "constraints.txt"
    pins.write_text(constraints.read_text(encoding="utf-8") if constraints.is_file() else "", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        fail("usage: bake.py SOURCE DEST PINS")
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
