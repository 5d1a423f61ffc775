"""Every install hint in mloop's source works: an extra it names exists in pyproject.toml, and a plain
package it names is neither a core dependency (that is already installed) nor inside an extra (then the
hint names the extra)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mloop.errors import SourceError, TrainError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mloop"

EXTRA = re.compile(r"mloop\[([^\]]*)\]")
PIP_INSTALL = re.compile(r"pip install\s+(?:-\S+\s+)*(\S+)")
NAMED_EXTRA = re.compile(r"(?:mloop's|the|optional)\s+`?([\w-]+)`?\s+extra\b")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match[0]).lower()


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project: dict[str, Any] = tomllib.load(file)["project"]
    return project


PROJECT = _project()
CORE = {_name(r) for r in PROJECT["dependencies"]}
EXTRAS: dict[str, set[str]] = {
    extra: {_name(r) for r in requirements} for extra, requirements in PROJECT["optional-dependencies"].items()
}
IN_AN_EXTRA = {name: extra for extra, names in EXTRAS.items() if extra != "dev" for name in names}


def _hints() -> list[tuple[str, int, str, str]]:
    """(file, line, kind, what) for every install hint in the package's .py files."""
    found: list[tuple[str, int, str, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [(where, number, "extra", group) for group in EXTRA.findall(line)]
            found += [(where, number, "pip", token.strip("'\"`.,;:)")) for token in PIP_INSTALL.findall(line)]
            found += [(where, number, "named", name) for name in NAMED_EXTRA.findall(line)]
    return found


HINTS = _hints()


def test_the_hints_are_found() -> None:
    extras = {what for _, _, kind, what in HINTS if kind == "extra"}
    assert {"postgres", "dvc", "s3", "lightgbm", "xgboost", "kubeflow"} <= extras
    assert any(kind == "pip" for _, _, kind, _ in HINTS)


@pytest.mark.parametrize(("where", "line", "kind", "what"), HINTS, ids=[f"{w}:{n}:{what}" for w, n, _, what in HINTS])
def test_each_hint_names_something_that_installs(where: str, line: int, kind: str, what: str) -> None:
    assert "{" not in what, f"{where}:{line}: spell the hint out ({what!r}) so it can be checked"
    if kind in ("extra", "named"):
        for extra in (e.strip() for e in what.split(",")):
            assert extra in EXTRAS, f"{where}:{line}: mloop has no extra {extra!r}; it has {sorted(EXTRAS)}"
        return
    if what.startswith("mloop["):
        return  # checked as an "extra" hint of the same line
    name = _name(what)
    if name == "mloop":
        return  # reinstalling mloop brings back a core dependency
    assert name not in CORE, f"{where}:{line}: {what} is a core dependency of mloop; say `pip install mloop`"
    assert name not in IN_AN_EXTRA, f"{where}:{line}: {what} comes with mloop[{IN_AN_EXTRA.get(name)}]; name the extra"


def test_a_missing_core_dependency_asks_for_mloop_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.config import MloopConfig
    from mloop.train.search import _optuna

    monkeypatch.setitem(sys.modules, "optuna", None)  # what an environment without the package looks like
    with pytest.raises(TrainError, match=r"pip install mloop\b") as raised:
        _optuna()
    assert "mloop[" not in raised.value.message

    monkeypatch.setitem(sys.modules, "croniter", None)
    with pytest.raises(ValueError, match=r"croniter, a dependency of mloop.*pip install mloop \[type"):
        MloopConfig.model_validate(
            {
                "name": "p",
                "task": "regression",
                "data": {"source": "d.csv", "target": "y"},
                "retrain": {"schedule": "0 3 * * 0"},
            }
        )


def test_an_object_store_without_its_fsspec_package_names_that_package() -> None:
    from mloop.data.sources import read_source

    pytest.importorskip("fsspec")
    for scheme, package in (("gs", "gcsfs"), ("az", "adlfs")):
        if package in sys.modules or _importable(package):
            continue
        with pytest.raises(SourceError) as raised:
            read_source(f"{scheme}://bucket/table.csv")
        assert raised.value.message.endswith(f"needs {package}: pip install {package}."), raised.value.message


def test_a_database_without_its_driver_names_no_extra_of_mloop() -> None:
    from mloop.data.sources import read_source

    if _importable("MySQLdb"):
        pytest.skip("a MySQL driver is installed")
    with pytest.raises(SourceError) as raised:
        read_source("mysql://user@db.example/sales", query="sales")
    assert "driver is not installed (MySQLdb)" in raised.value.message
    assert "mloop[" not in raised.value.message


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
