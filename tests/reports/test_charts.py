"""Charts: the SVG parses as XML with a bar per day; e-mail bars and sparklines match."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from monitor.reports.build import DayCount
from monitor.reports.charts import sparkline, volume_svg, volume_table

SVG = "{http://www.w3.org/2000/svg}"


def series(*counts: int, spikes: tuple[int, ...] = ()) -> list[DayCount]:
    """Consecutive days with these counts; ``spikes`` are indexes of spike days."""
    start = date(2024, 9, 1)
    return [DayCount(start + timedelta(days=i), n, i in spikes) for i, n in enumerate(counts)]


@pytest.mark.parametrize(
    ("days", "spikes"),
    [
        (series(*range(30), spikes=(29,)), 1),
        (series(0, 0, 0), 0),
        (series(1, 9, 1, 12, spikes=(1, 3)), 2),
        (series(), 0),
    ],
)
def test_svg_has_a_bar_per_day_and_marks_spikes(days: list[DayCount], spikes: int) -> None:
    root = ET.fromstring(str(volume_svg(days, label='Topic <&> "x"')))
    assert root.tag == f"{SVG}svg"
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == len(days)
    assert sum("spike" in bar.get("class", "").split() for bar in bars) == spikes
    assert len(root.findall(f"{SVG}path")) == spikes
    assert root.get("aria-label") == 'Topic <&> "x"'


def test_svg_bar_heights_follow_the_counts() -> None:
    root = ET.fromstring(str(volume_svg(series(2, 4, 0), label="t")))
    heights = [float(bar.get("height", "")) for bar in root.findall(f"{SVG}rect")]
    assert heights[1] == 2 * heights[0]
    assert heights[2] < heights[0]  # an empty day is a sliver, not a bar


class CellCounter(HTMLParser):
    """Counts the bar cells (those with a title) of an e-mail chart."""

    def __init__(self) -> None:
        super().__init__()
        self.bars = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td" and dict(attrs).get("title"):
            self.bars += 1


@pytest.mark.parametrize("counts", [(3, 0, 5), tuple(range(30))])
def test_email_chart_is_a_table_cell_per_day(counts: tuple[int, ...]) -> None:
    parser = CellCounter()
    parser.feed(str(volume_table(series(*counts), label="t")))
    assert parser.bars == len(counts)


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        ((0, 1, 8), ".▁█"),
        ((4, 4), "██"),
        ((0, 0), ".."),
        ((1, 2, 3, 4, 5, 6, 7, 8), "▁▂▃▄▅▆▇█"),
    ],
)
def test_sparkline(counts: tuple[int, ...], line: str) -> None:
    assert sparkline(series(*counts)) == line
