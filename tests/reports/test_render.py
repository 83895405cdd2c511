"""Rendering the report: golden HTML, e-mail HTML, text and JSON; the HTML parses cleanly.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/reports/test_render.py`` and
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest

from monitor.reports import DailyReport, RenderedReport, render_report, report_environment
from monitor.reports.build import SCHEMA_VERSION
from monitor.reports.render import report_email

GOLDEN = Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def rendered(scenario_report: DailyReport) -> RenderedReport:
    """The scenario's report, rendered with the built-in templates."""
    return render_report(scenario_report, report_environment())


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed; see the module docstring"


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("report.html", "html"),
        ("report-email.html", "email_html"),
        ("report.txt", "text"),
        ("report.json", "json"),
    ],
)
def test_golden(rendered: RenderedReport, name: str, part: str) -> None:
    check_golden(name, getattr(rendered, part))


@pytest.mark.parametrize("part", ["html", "email_html"])
def test_html_parses_without_errors(rendered: RenderedReport, part: str) -> None:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    document = parser.parse(getattr(rendered, part))
    assert document.find("body") is not None


def test_page_has_an_svg_chart_per_topic_and_the_email_none(
    rendered: RenderedReport, scenario_report: DailyReport
) -> None:
    # The page's inline SVG, each one taken out whole and parsed as the XML it must be.
    charts = [ET.fromstring(svg) for svg in re.findall(r"<svg .*?</svg>", rendered.html, re.S)]
    assert len(charts) == len(scenario_report.topics)
    for chart, topic in zip(charts, scenario_report.topics, strict=True):
        assert (
            len(chart.findall(f"{SVG}rect[@class='bar']"))
            + len(chart.findall(f"{SVG}rect[@class='bar spike']"))
            == scenario_report.rules.chart_days
        )
        # The baseline band covers the days that have a usual level (a week of history on).
        with_usual = sum(1 for day in topic.series if day.mean is not None)
        assert len(chart.findall(f"{SVG}rect[@class='band']")) == with_usual
    assert "<svg" not in rendered.email_html


def test_json_is_the_documented_payload(rendered: RenderedReport) -> None:
    data = json.loads(rendered.json)
    assert data == rendered.payload
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["date"] == "2024-09-09"
    assert data["start"] == "2024-09-08T22:00:00Z"
    assert data["spikes"] == ["election-interference", "climate-risk"]
    assert set(data["feed_health"]) == {"failing", "silent", "disabled", "all_new", "pages"}
    assert set(data["topics"][0]) == {
        "slug", "name", "priority", "articles", "stories", "baseline", "z", "spike", "series",
        "top_stories", "top_sources", "priority_articles", "more_priority_articles", "reviewed",
    }  # fmt: skip


def test_subject_names_the_spikes_and_feed_problems(rendered: RenderedReport) -> None:
    assert rendered.subject == (
        "[monitor] Daily report Mon 9 Sep 2024: 2 spikes (Election interference, Climate risk), "
        "4 feed problems"
    )


def test_hostile_titles_are_escaped(scenario_report: DailyReport) -> None:
    from dataclasses import replace

    topic = scenario_report.topics[0]
    story = replace(topic.top_stories[0], title="<script>alert(1)</script>", url="javascript:x")
    hostile = replace(scenario_report, topics=[replace(topic, top_stories=[story])])
    html = render_report(hostile, report_environment()).html
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:x"' not in html


def test_report_email_hands_the_outbox_the_email_parts(rendered: RenderedReport) -> None:
    email = report_email(rendered, ["ada@example.org"])
    assert email.recipients == ("ada@example.org",)
    assert (email.subject, email.text, email.html) == (
        rendered.subject,
        rendered.text,
        rendered.email_html,
    )


def test_a_template_in_the_config_directory_replaces_the_built_in_one(
    scenario_report: DailyReport, tmp_path: Path
) -> None:
    (tmp_path / "report.txt").write_text("{{ report.day }}: {{ report.spikes | length }} spikes\n")
    text = render_report(scenario_report, report_environment(tmp_path)).text
    assert text == "2024-09-09: 2 spikes\n"
