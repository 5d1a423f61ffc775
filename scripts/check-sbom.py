"""Checks the image's SBOM (`make sbom`): valid CycloneDX, mloop its subject, every component at the lock's version.

    .venv/bin/python scripts/check-sbom.py dist/sbom.cdx.json dist/sbom-requirements.txt --extras postgres

REQUIREMENTS is the resolved set the SBOM was made from (uv's output: ``name==version`` lines). Exit 1 unless
the SBOM passes CycloneDX's own strict JSON-schema validation of its spec version; its subject
(``metadata.component``) is mloop at pyproject.toml's version; its components are exactly REQUIREMENTS'
pins, each at the version requirements/lock.txt pins; every runtime dependency of pyproject.toml and of the
extras named is among them; and no tool of the dev extra that the image does not install is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
NOT_IN_IMAGE = ("pytest", "ruff", "mypy", "pip-audit", "cyclonedx-bom", "hypothesis", "schemathesis")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, set[str]]:
    """``name → versions`` of a requirements or constraints file (a universal lock may pin two, by marker)."""
    found: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line.strip()):
            found.setdefault(normalize(match.group(1)), set()).add(match.group(2))
    return found


def check(sbom_path: Path, requirements: Path, lock: Path, pyproject: Path, extras: list[str]) -> list[str]:
    problems: list[str] = []
    text = sbom_path.read_text(encoding="utf-8")
    sbom: dict[str, Any] = json.loads(text)
    version = sbom.get("specVersion", "")
    try:
        schema = SchemaVersion.from_version(version)
    except ValueError:
        return [f"specVersion {version!r} is not a CycloneDX version"]
    if (error := JsonStrictValidator(schema).validate_str(text)) is not None:
        problems.append(f"not valid CycloneDX {version}: {error}")
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    subject = sbom.get("metadata", {}).get("component", {})
    if (subject.get("name"), subject.get("version")) != (project["name"], project["version"]):
        problems.append(f"its subject is {subject.get('name')} {subject.get('version')}, not {project['name']}")
    components = {normalize(c["name"]): c.get("version") for c in sbom.get("components", [])}
    wanted = {name: versions.pop() for name, versions in pins(requirements).items()}
    if missing := sorted(set(wanted) - set(components)):
        problems.append(f"{len(missing)} resolved packages are not components: {', '.join(missing)}")
    if extra := sorted(set(components) - set(wanted)):
        problems.append(f"{len(extra)} components were not resolved for the image: {', '.join(extra)}")
    locked = pins(lock)
    for name, got in sorted(components.items()):
        if name not in locked:
            problems.append(f"{name} {got} is not in {lock.name}")
        elif got not in locked[name]:
            problems.append(f"{name} is at {got}, {lock.name} pins {' or '.join(sorted(locked[name]))}")
    direct = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]
    for requirement in map(Requirement, direct):
        if requirement.marker is None or requirement.marker.evaluate({"sys_platform": "linux"}):
            if normalize(requirement.name) not in components:
                problems.append(f"mloop's dependency {requirement.name} is not a component")
    if dev := sorted(set(NOT_IN_IMAGE) & set(components)):
        problems.append(f"dev tools the image does not install are components: {', '.join(dev)}")
    if not problems:
        extras_text = f" with the extras {', '.join(extras)}" if extras else ""
        print(  # noqa: T201 - the check's one line of output
            f"{sbom_path}: valid CycloneDX {version}; {project['name']} {project['version']}{extras_text} and "
            f"{len(components)} components, each at the version {lock.name} pins"
        )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("sbom", type=Path)
    parser.add_argument("requirements", type=Path, help="the resolved set the SBOM was made from")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements" / "lock.txt")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--extras", default="", help="mloop's extras in the image, comma-separated")
    args = parser.parse_args()
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    problems = check(args.sbom, args.requirements, args.lock, args.pyproject, extras)
    for problem in problems:
        print(f"{args.sbom}: {problem}", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
