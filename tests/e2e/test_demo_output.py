"""What `mloop demo > demo.log` leaves in the file: mloop's own lines only, and whole tables.

Before, a fresh user's log held about 60 MLflow "Downloading artifacts" bars, and rich cut every table
at 80 columns because the output was not a terminal.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests.helpers.cli import mloop_argv, user_env

pytestmark = pytest.mark.e2e

# What third-party progress bars and warnings look like: tqdm's "42%|███▌ | 3/7 [00:00<00:00, 9.1it/s]",
# MLflow's bar label, and the warnings module's "…: SomeWarning: …".
THIRD_PARTY = [
    re.compile(r"\d+%\|"),
    re.compile(r"\d+(\.\d+)?(it|s)/(s|it)\]"),
    re.compile(r"Downloading artifacts"),
    re.compile(r"\b\w*Warning\b"),
    re.compile(r"^(INFO|WARNING|DEBUG)\b|\bINFO \[", re.MULTILINE),
    re.compile(r"Traceback"),
]


def _tables(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """Each rich table in the log as (header cells, body rows of cells), read from its box characters."""
    found: list[tuple[list[str], list[list[str]]]] = []
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("┃"):
            assert line.rstrip().endswith("┃"), f"a header lost its right edge: {line!r}"
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│") and header is not None:
            assert line.rstrip().endswith("│"), f"a row lost its right edge: {line!r}"
            rows.append([c.strip() for c in line.strip().strip("│").split("│")])
        elif line.startswith("└") and header is not None:
            found.append((header, rows))
            header, rows = None, []
    return found


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("demo-cli")
    log = root / "demo.log"
    # As a user runs it: the real command, stdout and stderr to a file, no COLUMNS to hint a width.
    with log.open("w") as out:
        done = subprocess.run(
            mloop_argv("demo", "--dir", str(root / "demo")),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=user_env(),
            cwd=root,
            timeout=900,
            check=False,
        )
    text = Path(log).read_text(encoding="utf-8")
    assert done.returncode == 0, text[-3000:]
    return text


def test_the_log_holds_no_third_party_progress_bar_warning_or_log_line(demo_log: str) -> None:
    for pattern in THIRD_PARTY:
        hits = [line for line in demo_log.splitlines() if pattern.search(line)]
        assert not hits, f"{pattern.pattern!r} matched {len(hits)} lines, first: {hits[0]!r}"
    # mloop's own story is there: the stages, the windows and the summary.
    for expected in ("1. train on 2006–2007 sales", "window 1 (", "4. summary", "model versions", "look further"):
        assert expected in demo_log


def test_every_table_row_is_whole(demo_log: str) -> None:
    tables = _tables(demo_log.splitlines())
    headers = [header for header, _ in tables]
    windows_header = ["#", "sold", "served", "drifted", "together", "est. rmse", "live rmse", "train rmse", "decay"]
    assert [*windows_header, "retrain"] in headers
    assert ["version", "aliases", "rmse (own holdout)", "train rows", "gate"] in headers
    for header, rows in tables:
        assert rows, f"table {header} has no rows"
        for row in rows:
            # A cut cell ends in an ellipsis; a wrapped row spills onto a line whose first cell is empty.
            assert len(row) == len(header), f"row {row} does not line up with {header}"
            assert not any(cell.endswith("…") for cell in row), f"a cell was cut: {row}"
            assert row[0], f"a row of {header} was wrapped onto a second line: {row}"
    windows = next(rows for header, rows in tables if header[0] == "#")
    assert [int(row[0]) for row in windows] == list(range(1, len(windows) + 1))
    assert all(re.fullmatch(r"\d{4}-\d{2} → \d{4}-\d{2}", row[1]) for row in windows)


def test_long_lines_are_kept_whole(demo_log: str) -> None:
    """Without a terminal a line is as long as what it says; rich's 80-column default broke these in two."""
    retrained = [line for line in demo_log.splitlines() if line.startswith("  retrained (")]
    assert retrained, "the demo retrained nothing"
    for line in retrained:
        assert "→ version" in line and "on the same holdout" in line, f"the gate's reason was cut: {line!r}"
