"""Compares the running Python's installed distributions with a lock file (pip constraints, `name==version ; marker`).

    .venv/bin/python scripts/check-lock.py requirements/lock.txt            exit 1 unless every pin that applies here
                                                                             is installed at exactly its version
    .venv/bin/python scripts/check-lock.py --report requirements/lock.txt   only list what differs (exit 0): what a
                                                                             LOCK= install upgraded past the lock
Distributions installed but not in the lock (mloop itself, pip, the venv's own seeds) are listed, never an error.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")
NOT_LOCKED = {"mloop", "pip"}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match is None:
            raise SystemExit(f"{path}:{number}: not a `name==version` pin: {raw}")
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[normalize(name)] = version
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path)
    parser.add_argument("--report", action="store_true", help="list the differences, exit 0")
    args = parser.parse_args()

    pins = read_lock(args.lock)
    installed = {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()}
    missing = sorted(name for name in pins if name not in installed)
    differ = sorted(name for name in pins if name in installed and installed[name] != pins[name])
    extra = sorted(name for name in installed if name not in pins and name not in NOT_LOCKED)

    for name in differ:
        say(f"{name}: installed {installed[name]}, lock {pins[name]}")
    for name in missing:
        say(f"{name}: not installed, lock {pins[name]}")
    if extra:
        say("installed but not in the lock: " + ", ".join(f"{n}=={installed[n]}" for n in extra))
    matching = len(pins) - len(differ) - len(missing)
    say(f"{args.lock}: {matching} of {len(pins)} pins installed at the lock's version ({sys.executable})")
    return 0 if args.report or not (differ or missing) else 1


if __name__ == "__main__":
    sys.exit(main())
