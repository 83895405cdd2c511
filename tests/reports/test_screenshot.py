"""Look at it: the scenario's report page in real headless Chromium, kept as a test artifact.

The screenshot lands in ``tests/artifacts/report.png`` (ignored by git) for a person to look
at; the test checks that Chromium drew a full-width page with something on it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from monitor.reports import DailyReport, render_report, report_environment

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
WIDTH, HEIGHT = 800, 2600
# A blank 800 x 2600 page compresses to a few kilobytes; the report is far busier.
MIN_PNG_BYTES = 50_000


def find_chromium() -> str | None:
    """Debian's Chromium (``make test`` installs it), or one named by $CHROMIUM."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_report_page_in_chromium(scenario_report: DailyReport, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    page = tmp_path / "report.html"
    page.write_text(render_report(scenario_report, report_environment()).html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    completed = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > MIN_PNG_BYTES
