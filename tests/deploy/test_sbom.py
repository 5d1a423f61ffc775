"""The image's SBOM tooling (`make sbom`), offline: cyclonedx-py as the Makefile calls it, then scripts/check-sbom.py.

`make sbom` resolves the image's whole set with uv, which needs PyPI; here the set is mloop's direct runtime
dependencies and the postgres extra (the Dockerfile's default EXTRAS) at the lock's versions, which needs
nothing but the lock. `.ci/run` runs `make sbom` itself on the whole set.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
CYCLONEDX = Path(sys.executable).with_name("cyclonedx-py")
PYPROJECT = REPO / "pyproject.toml"


@functools.cache
def _check_sbom() -> ModuleType:
    """scripts/check-sbom.py, the check `make sbom` ends with, as a module."""
    spec = importlib.util.spec_from_file_location("check_sbom", REPO / "scripts" / "check-sbom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problems(sbom: Path, requirements: Path, extras: list[str]) -> list[str]:
    problems: list[str] = _check_sbom().check(sbom, requirements, LOCK, PYPROJECT, extras)
    return problems


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    """The lock's pins that apply to Linux and Python 3.11 (the image's), by normalized name."""
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        requirement = line.split(" #")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            parsed = Requirement(requirement)
            environment = {"sys_platform": "linux", "python_version": "3.11", "python_full_version": "3.11.2"}
            if parsed.marker is None or parsed.marker.evaluate(environment):
                pins[_normalize(parsed.name)] = str(parsed.specifier).removeprefix("==")
    return pins


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A requirements file of the image's direct dependencies at the lock's versions, and its SBOM."""
    if not CYCLONEDX.is_file():
        pytest.skip("cyclonedx-py is not installed: pip install -c requirements/lock.txt -e '.[dev]'")
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    locked = _locked()
    names = sorted(
        {
            _normalize(Requirement(d).name)
            for d in project["dependencies"] + project["optional-dependencies"]["postgres"]
        }
    )
    folder = tmp_path_factory.mktemp("sbom")
    requirements = folder / "requirements.txt"
    requirements.write_text("".join(f"{name}=={locked[name]}\n" for name in names), encoding="utf-8")
    sbom = folder / "sbom.cdx.json"
    subprocess.run(
        [str(CYCLONEDX), "requirements", "--pyproject", str(PYPROJECT), "--mc-type", "application",
         "--sv", "1.6", "--of", "JSON", "--output-reproducible", "--validate", "-o", str(sbom), str(requirements)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return sbom, requirements, json.loads(sbom.read_text(encoding="utf-8"))


def test_the_sbom_names_mloop_and_the_locked_versions(made: tuple[Path, Path, dict[str, Any]]) -> None:
    sbom, requirements, document = made
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    subject = document["metadata"]["component"]
    assert (subject["name"], subject["version"], subject["type"]) == ("mloop", "0.1.0", "application")
    components = {_normalize(c["name"]): c for c in document["components"]}
    locked = _locked()
    for name in ("mlflow", "fastapi", "scikit-learn", "psycopg"):
        assert components[name]["version"] == locked[name]
        assert components[name]["purl"] == f"pkg:pypi/{name}@{locked[name]}"
    assert _problems(sbom, requirements, ["postgres"]) == []


def test_the_check_names_a_version_off_the_lock_and_a_missing_dependency(
    made: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, requirements, document = made
    document = copy.deepcopy(document)
    for component in document["components"]:
        if component["name"] == "numpy":
            component["version"] = "1.0.0"
    document["components"] = [c for c in document["components"] if c["name"] != "fastapi"]
    wrong = tmp_path / "wrong.cdx.json"
    wrong.write_text(json.dumps(document), encoding="utf-8")
    problems = _problems(wrong, requirements, ["postgres"])
    assert f"numpy is at 1.0.0, lock.txt pins {_locked()['numpy']}" in problems
    assert "mloop's dependency fastapi is not a component" in problems


def test_the_check_refuses_what_the_schema_refuses(made: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, requirements, document = made
    document = copy.deepcopy(document)
    del document["components"][0]["type"]
    broken = tmp_path / "broken.cdx.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    assert any(p.startswith("not valid CycloneDX 1.6: ") for p in _problems(broken, requirements, []))
