"""Charts: the SVG parses as XML with a bar per day; e-mail bars and sparklines match."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from monitor.reports.build import DayCount
from monitor.reports.charts import (
    Line,
    Share,
    compare_svg,
    date_ticks,
    nice_ceiling,
    share_svg,
    sparkline,
    volume_svg,
    volume_table,
)

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
    bars = [r for r in root.findall(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    assert len(bars) == len(days)
    assert sum("spike" in bar.get("class", "").split() for bar in bars) == spikes
    assert len(root.findall(f"{SVG}circle")) == spikes
    assert root.get("aria-label") == 'Topic <&> "x"'


def test_svg_bar_heights_follow_the_counts() -> None:
    root = ET.fromstring(str(volume_svg(series(2, 4, 0), label="t")))
    heights = [float(bar.get("height", "")) for bar in root.findall(f"{SVG}rect[@class='bar']")]
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


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (1, 1), (1.2, 2), (3, 3), (7, 8), (9, 10), (12, 15), (21, 25), (99, 100), (130, 150)],
)
def test_axis_top_is_a_round_number_just_above_the_peak(value: float, top: int) -> None:
    assert nice_ceiling(value) == top


@pytest.mark.parametrize(
    ("days", "ticks"),
    [(0, []), (3, [0, 1, 2]), (10, [1, 3, 5, 7, 9]), (30, [1, 8, 15, 22, 29]),
     (90, [5, 26, 47, 68, 89])],
)  # fmt: skip
def test_date_labels_end_on_the_last_day_and_stay_few(days: int, ticks: list[int]) -> None:
    assert date_ticks(days) == ticks


def test_svg_is_not_scaled_and_has_no_inline_style() -> None:
    days = series(1, 2, 3)
    text = str(volume_svg(days, label="t"))
    root = ET.fromstring(text)
    # No viewBox: nothing scales, so a 12 px label stays 12 px at any width.
    assert root.get("viewBox") is None
    assert root.get("width") == "100%"
    assert "style" not in text
    sizes = {float(t.get("font-size", "0")) for t in root.iter(f"{SVG}text")}
    assert sizes
    assert min(sizes) >= 11


def test_svg_draws_the_baseline_band_of_days_with_a_usual_level() -> None:
    days = [DayCount(date(2024, 9, 1), 2, False), DayCount(date(2024, 9, 2), 9, True, 2.0, 1.5)]
    root = ET.fromstring(str(volume_svg(days, label="t")))
    bands = root.findall(f"{SVG}rect[@class='band']")
    assert len(bands) == 1
    assert bands[0].get("x") == "50%"  # the second of two days
    assert len(root.findall(f"{SVG}line[@class='usual']")) == 1


def test_comparison_and_share_charts() -> None:
    days = [date(2024, 9, 1) + timedelta(days=i) for i in range(4)]
    root = ET.fromstring(
        str(compare_svg(days, [Line("A", [1, 2, 3, 4]), Line("B", [0, 0, 1, 0])], label="c"))
    )
    assert len(root.findall(f".//{SVG}line[@class='series s0']")) == 3
    assert len(root.findall(f".//{SVG}line[@class='series s1']")) == 3
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert legend == ["A (10)", "B (1)"]
    shares = ET.fromstring(str(share_svg([Share("X", 3), Share("Y", 1)], total=4, label="s")))
    values = [t.text for t in shares.iter(f"{SVG}text") if t.get("class") == "share-value"]
    assert values == ["3 (75%)", "1 (25%)"]
