"""Volume charts: inline SVG for the web page, table bars for e-mail, a sparkline for text.

Mail clients do not show SVG, so the e-mail form is a row of table cells whose heights are the
bars; both are hand-written because a plotting library would outweigh thirty rectangles.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from monitor.reports.build import DayCount

WIDTH = 600
HEIGHT = 120
PLOT_TOP = 14
PLOT_HEIGHT = 84
BAR_COLOUR = "#0969da"
SPIKE_COLOUR = "#cf222e"
EMPTY_COLOUR = "#d0d7de"
EMAIL_BAR_HEIGHT = 60
SPARKS = "▁▂▃▄▅▆▇█"


def _peak(series: Sequence[DayCount]) -> int:
    return max((day.articles for day in series), default=0) or 1


def _bar_title(day: DayCount) -> str:
    noun = "article" if day.articles == 1 else "articles"
    return f"{day.day.isoformat()}: {day.articles} {noun}{' (spike)' if day.spike else ''}"


def volume_svg(series: Sequence[DayCount], *, label: str) -> Markup:
    """An SVG bar chart of ``series``, one ``rect.bar`` per day, spike days red and marked."""
    peak, slot = _peak(series), WIDTH / max(len(series), 1)
    base = PLOT_TOP + PLOT_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" style="max-width:100%;height:auto;" role="img" '
        f'aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#8c959f" stroke-width="1"/>',
        f'<text x="2" y="10" font-size="10" fill="#59636e">{peak}</text>',
    ]
    for index, day in enumerate(series):
        height = round(PLOT_HEIGHT * day.articles / peak, 1) if day.articles else 1.0
        x, width = round(index * slot + slot * 0.125, 1), round(slot * 0.75, 1)
        colour = SPIKE_COLOUR if day.spike else BAR_COLOUR if day.articles else EMPTY_COLOUR
        parts.append(
            f'<rect class="bar{" spike" if day.spike else ""}" x="{x}" y="{base - height:g}" '
            f'width="{width}" height="{height:g}" fill="{colour}">'
            f"<title>{escape(_bar_title(day))}</title></rect>"
        )
        if day.spike:
            middle, top = round(x + width / 2, 1), round(base - height - 2, 1)
            parts.append(
                f'<path class="spike-mark" d="M{middle} {top} l4 -7 h-8 z" fill="{SPIKE_COLOUR}"/>'
            )
    if series:
        bottom = HEIGHT - 4
        parts.append(
            f'<text x="0" y="{bottom}" font-size="10" fill="#59636e">'
            f"{series[0].day.isoformat()}</text>"
        )
        parts.append(
            f'<text x="{WIDTH}" y="{bottom}" font-size="10" fill="#59636e" text-anchor="end">'
            f"{series[-1].day.isoformat()}</text>"
        )
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
        f'<tr><td colspan="{max(len(series) // 2, 1)}" style="font-size:10px;color:#59636e;">'
        f"{first}</td>"
        f'<td colspan="{max(len(series) - len(series) // 2, 1)}" align="right" '
        f'style="font-size:10px;color:#59636e;">{last}</td></tr></table>'
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
