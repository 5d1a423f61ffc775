"""/dashboard in headless Chromium (Debian's, driven by Playwright): the charts render with data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Monitored

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing on CI")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package")
    if not CHROMIUM.is_file():
        _missing("Debian's chromium (/usr/bin/chromium; apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_dashboard_is_the_report_and_needs_nothing_from_outside(monitored: Monitored) -> None:
    answer = httpx.get(f"{monitored.server.url}/dashboard", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = answer.text
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "mloop report: ames-monitor" in page


def test_the_charts_render_with_data_in_chromium(monitored: Monitored, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    response = page.goto(f"{monitored.server.url}/dashboard", wait_until="load", timeout=30_000)
    assert response is not None and response.ok
    assert requests == [f"{monitored.server.url}/dashboard"], "the page must load nothing else"

    # Two monitoring windows: each line chart has a drawn series with a point per window.
    series = page.locator("svg polyline.series")
    assert series.count() >= 3
    points = [len(p.split()) for p in series.evaluate_all("els => els.map(e => e.getAttribute('points'))")]
    assert max(points) == 2
    # The PSI bars and the distribution charts have visible, non-empty bars.
    boxes = page.locator("svg rect.bar").evaluate_all(
        "els => els.map(e => { const b = e.getBoundingClientRect(); return [b.width, b.height]; })"
    )
    assert len(boxes) > 20 and sum(1 for w, h in boxes if w > 0 and h > 0) > 20
    assert page.locator("svg.dist").count() == 6
    # The drifted feature is named among the distributions, and the windows table has both windows.
    assert page.locator("svg.dist[aria-label^='Gr_Liv_Area']").count() == 1
    assert page.locator("h2:has-text('Monitoring windows') + table tbody tr").count() == 2

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("MLOOP_SCREENSHOTS")
    if keep:  # e.g. a CI artifact folder
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    page.close()
