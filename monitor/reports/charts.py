"""Charts: SVG for web pages (volume with its baseline band, topics compared, share by source),
table bars for e-mail, a sparkline for text.

The SVGs are drawn without a viewBox: the element is as wide as its box (``width="100%"``) and
a fixed number of pixels high, horizontal positions are percentages of that width and vertical
ones pixels. Nothing is scaled, so a 12 px label is 12 px on a phone and on a wide screen (a
600-unit viewBox squeezed into a 320 px card made its 10-unit labels 5 px). Colours and sizes
are presentation attributes, never ``style``: the web app's content-security policy refuses
inline styles. Mail clients do not show SVG, so the e-mail form is a row of table cells whose
heights are the bars; all are hand-written because a plotting library would outweigh them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from monitor.reports.build import DayCount

HEIGHT = 180
PLOT_TOP = 28  # room for the top label and the legend above the bars
PLOT_BOTTOM = 150  # the x axis; the dates sit under it
FONT_SIZE = 12  # the smallest text of any chart, in CSS pixels (nothing is scaled)
BAR_COLOUR = "#0969da"
SPIKE_COLOUR = "#cf222e"
EMPTY_COLOUR = "#d0d7de"
BAND_COLOUR = "#8c959f"
TEXT_COLOUR = "#59636e"
AXIS_COLOUR = "#8c959f"
# Series colours of the comparison chart (Okabe-Ito, told apart with colour blindness too),
# each with its own dash pattern so print and grey-scale still separate them.
SERIES_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
SERIES_DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3", "10 4")
LEGEND_ROW = 18
SHARE_ROW = 36
EMAIL_BAR_HEIGHT = 60
SPARKS = "▁▂▃▄▅▆▇█"
# At most this many date labels: about 45 px each fit a 320 px card.
MAX_DATE_LABELS = 6


def _peak(series: Sequence[DayCount]) -> int:
    return max((day.articles for day in series), default=0) or 1


def _bar_title(day: DayCount) -> str:
    noun = "article" if day.articles == 1 else "articles"
    usual = ""
    if day.mean is not None and day.stdev is not None:
        usual = f"; usual {day.mean:.1f} ± {day.stdev:.1f}"
    return f"{day.day.isoformat()}: {day.articles} {noun}{usual}{' (spike)' if day.spike else ''}"


def nice_ceiling(value: float) -> int:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten, whole)
    at least ``value``: the top of an axis, so the highest bar fills most of the chart."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
        top = math.ceil(step * power)
        if top >= value:
            return top
    return 10 * power


def short_date(day: date) -> str:
    """``2 Sep`` (English month abbreviations, as the rest of the UI)."""
    return f"{day.day} {day.strftime('%b')}"


def date_ticks(count: int) -> list[int]:
    """Which of ``count`` days get a date label: the last one, then every week (or two, or
    three) back, at most MAX_DATE_LABELS of them."""
    if count <= 0:
        return []
    if count <= MAX_DATE_LABELS:
        step = 1
    elif count <= 14:
        step = math.ceil(count / MAX_DATE_LABELS)
    else:
        step = 7 * math.ceil(count / (7 * MAX_DATE_LABELS))
    return sorted(range(count - 1, -1, -step))


def _pct(value: float) -> str:
    return f"{round(value, 3):g}%"


def _text(x: str, y: float, content: str, *, anchor: str = "start", cls: str = "") -> str:
    # The white outline keeps a label readable where it crosses a bar or a line.
    classes = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x}" y="{y:g}" font-size="{FONT_SIZE}" fill="{TEXT_COLOUR}" '
        f'text-anchor="{anchor}" stroke="#ffffff" stroke-width="3" paint-order="stroke"'
        f"{classes}>{escape(content)}</text>"
    )


def _open(label: str, height: int, cls: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="100%" height="{height}" '
        f'role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]


def _date_axis(days: Sequence[date], slot: float) -> list[str]:
    """The x axis: a line, and dates under the ticked days."""
    parts = [
        f'<line x1="0" y1="{PLOT_BOTTOM}" x2="100%" y2="{PLOT_BOTTOM}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    ]
    for index in date_ticks(len(days)):
        middle = (index + 0.5) * slot
        parts.append(
            f'<line x1="{_pct(middle)}" y1="{PLOT_BOTTOM}" x2="{_pct(middle)}" '
            f'y2="{PLOT_BOTTOM + 4}" stroke="{AXIS_COLOUR}" stroke-width="1"/>'
        )
        # Labels at the edges are anchored inside the chart, so none is cut off.
        if middle < 6:
            x, anchor = _pct(index * slot), "start"
        elif middle > 94:
            x, anchor = _pct((index + 1) * slot), "end"
        else:
            x, anchor = _pct(middle), "middle"
        parts.append(_text(x, PLOT_BOTTOM + 18, short_date(days[index]), anchor=anchor,
                           cls="axis-date"))  # fmt: skip
    return parts


def _value_axis(top: int) -> list[str]:
    """Grid lines at the top of the scale and half-way, labelled with their counts."""
    parts = []
    for value in sorted({top, top // 2} - {0}):
        y = _y(value, top)
        parts.append(
            f'<line x1="0" y1="{y:g}" x2="100%" y2="{y:g}" stroke="{EMPTY_COLOUR}" '
            f'stroke-width="1" stroke-dasharray="2 3"/>'
        )
        parts.append(_text("0", y - 3, str(value), cls="axis-value"))
    return parts


def _y(value: float, top: int) -> float:
    return round(PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * value / top, 1)


def _band_top(day: DayCount) -> float:
    # One spread either side of the usual level, the spread taken as at least one article a
    # day, as the z score takes it (monitor.reports.build).
    return (day.mean or 0.0) + max(day.stdev or 0.0, 1.0)


def volume_svg(series: Sequence[DayCount], *, label: str) -> Markup:
    """A bar chart of ``series``: a ``rect.bar`` per day (spike days red, marked with a dot),
    the usual level as a shaded band with its mean dashed, counts and dates on the axes."""
    has_band = any(day.mean is not None for day in series)
    highest = max([_peak(series), *(_band_top(d) for d in series if d.mean is not None)])
    top = nice_ceiling(highest)
    slot = 100 / max(len(series), 1)
    parts = _open(label, HEIGHT, "chart volume")
    if has_band:
        parts.append(_text("100%", 12, "shaded: usual level ± 1 spread", anchor="end",
                           cls="legend"))  # fmt: skip
    parts += _value_axis(top)
    for index, day in enumerate(series):
        if day.mean is None:
            continue
        high, low = _y(_band_top(day), top), _y(max(day.mean - max(day.stdev or 0, 1), 0), top)
        x, width = _pct(index * slot), _pct(slot)
        parts.append(
            f'<rect class="band" x="{x}" y="{high:g}" width="{width}" height="{low - high:g}" '
            f'fill="{BAND_COLOUR}" fill-opacity="0.22"/>'
        )
        mean = _y(day.mean, top)
        parts.append(
            f'<line class="usual" x1="{x}" y1="{mean:g}" x2="{_pct((index + 1) * slot)}" '
            f'y2="{mean:g}" stroke="{TEXT_COLOUR}" stroke-width="1" stroke-dasharray="3 2"/>'
        )
    for index, day in enumerate(series):
        height = round((PLOT_BOTTOM - PLOT_TOP) * day.articles / top, 1) if day.articles else 1.0
        x, width = _pct(index * slot + slot * 0.15), _pct(slot * 0.7)
        colour = SPIKE_COLOUR if day.spike else BAR_COLOUR if day.articles else EMPTY_COLOUR
        parts.append(
            f'<rect class="bar{" spike" if day.spike else ""}" x="{x}" '
            f'y="{PLOT_BOTTOM - height:g}" width="{width}" height="{height:g}" fill="{colour}">'
            f"<title>{escape(_bar_title(day))}</title></rect>"
        )
        if day.spike:
            parts.append(
                f'<circle class="spike-mark" cx="{_pct((index + 0.5) * slot)}" '
                f'cy="{PLOT_BOTTOM - height - 6:g}" r="3.5" fill="{SPIKE_COLOUR}"/>'
            )
    if series:
        parts += _date_axis([day.day for day in series], slot)
    else:
        parts.append(_text("50%", (PLOT_TOP + PLOT_BOTTOM) / 2, "no days", anchor="middle"))
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Line:
    """One topic's daily counts in a comparison chart."""

    name: str
    counts: Sequence[int]


def compare_svg(days: Sequence[date], lines: Sequence[Line], *, label: str) -> Markup:
    """Topics' daily counts over the same ``days`` as lines, a legend row per topic above."""
    legend = LEGEND_ROW * len(lines)
    height = HEIGHT + legend
    top = nice_ceiling(max((max(line.counts, default=0) for line in lines), default=0))
    slot = 100 / max(len(days), 1)
    parts = _open(label, height, "chart compare")
    for number, line in enumerate(lines):
        colour, dash = _series_style(number)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        y = 12 + number * LEGEND_ROW
        parts.append(
            f'<line class="legend-key" x1="0" y1="{y - 4}" x2="28" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="3"{dashes}/>'
        )
        total = sum(line.counts)
        parts.append(_text("36", y, f"{line.name[:80]} ({total})", cls="legend"))
    parts.append(f'<g transform="translate(0 {legend})">')
    parts += _value_axis(top)
    for number, line in enumerate(lines):
        colour, dash = _series_style(number)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        points = [(_pct((i + 0.5) * slot), _y(n, top)) for i, n in enumerate(line.counts)]
        # Percent x positions: a polyline cannot take them, line segments can.
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            parts.append(
                f'<line class="series s{number}" x1="{x1}" y1="{y1:g}" x2="{x2}" y2="{y2:g}" '
                f'stroke="{colour}" stroke-width="2"{dashes}/>'
            )
        if len(points) == 1:
            cx, cy = points[0]
            parts.append(f'<circle class="series s{number}" cx="{cx}" cy="{cy:g}" r="3" '
                         f'fill="{colour}"/>')  # fmt: skip
    if days:
        parts += _date_axis(days, slot)
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _series_style(number: int) -> tuple[str, str]:
    return SERIES_COLOURS[number % len(SERIES_COLOURS)], SERIES_DASHES[number % len(SERIES_DASHES)]


@dataclass(frozen=True, slots=True)
class Share:
    """One source's part of a total."""

    name: str
    count: int


def share_svg(shares: Sequence[Share], *, total: int, label: str) -> Markup:
    """Horizontal bars, one row per source: its name and ``count (percent)`` above its bar."""
    height = max(SHARE_ROW * len(shares), SHARE_ROW) + 4
    widest = max((share.count for share in shares), default=0) or 1
    parts = _open(label, height, "chart share")
    for row, share in enumerate(shares):
        y = row * SHARE_ROW + 14
        percent = 100 * share.count / total if total else 0.0
        parts.append(_text("0", y, share.name[:90], cls="share-name"))
        parts.append(_text("100%", y, f"{share.count} ({percent:.0f}%)", anchor="end",
                           cls="share-value"))  # fmt: skip
        parts.append(
            f'<rect class="share-bar" x="0" y="{y + 5}" width="{_pct(98 * share.count / widest)}" '
            f'height="10" rx="2" fill="{BAR_COLOUR}"><title>{escape(share.name)}: '
            f"{share.count} of {total}</title></rect>"
        )
    if not shares:
        parts.append(_text("0", 14, "nothing in this range"))
    parts.append("</svg>")
    return Markup("".join(parts))


def volume_table(series: Sequence[DayCount], *, label: str) -> Markup:
    """The same chart as a one-row table of bars, which every mail client draws."""
    peak = _peak(series)
    cells = []
    for day in series:
        height = max(1, round(EMAIL_BAR_HEIGHT * day.articles / peak))
        colour = SPIKE_COLOUR if day.spike else BAR_COLOUR if day.articles else EMPTY_COLOUR
        cells.append(
            f'<td valign="bottom" style="padding:0 1px;vertical-align:bottom;" '
            f'title="{escape(_bar_title(day))}"><div style="height:{height}px;'
            f'background:{colour};font-size:0;line-height:0;">&nbsp;</div></td>'
        )
    first = series[0].day.isoformat() if series else ""
    last = series[-1].day.isoformat() if series else ""
    return Markup(
        f'<table role="img" aria-label="{escape(label)}" cellpadding="0" cellspacing="0" '
        f'width="100%" style="border-collapse:collapse;height:{EMAIL_BAR_HEIGHT}px;">'
        f'<tr style="height:{EMAIL_BAR_HEIGHT}px;">{"".join(cells)}</tr>'
        f'<tr><td colspan="{max(len(series) // 2, 1)}" style="font-size:12px;color:#59636e;">'
        f"{first}</td>"
        f'<td colspan="{max(len(series) - len(series) // 2, 1)}" align="right" '
        f'style="font-size:12px;color:#59636e;">{last}</td></tr></table>'
    )


def sparkline(series: Sequence[DayCount]) -> str:
    """One character per day, ``.`` for none; spike days are listed by the caller."""
    peak = _peak(series)
    return "".join(
        SPARKS[min(len(SPARKS) - 1, (day.articles * len(SPARKS) - 1) // peak)]
        if day.articles
        else "."
        for day in series
    )
