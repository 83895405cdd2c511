"""``monitor report``: builds, stores and writes each format, to a file or standard output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import html5lib
import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from monitor.cli.app import app
from monitor.reports import get_report
from tests.reports.scenario import DAY, ZONE
from tests.utils.config import ConfigWriter

runner = CliRunner()


def spikes_of_json(text: str) -> bool:
    spikes: object = json.loads(text)["spikes"]
    return spikes == ["election-interference", "climate-risk"]


def spikes_of_text(text: str) -> bool:
    # config/topics.yaml of the test sets the election topic's priority back to normal.
    return "== Election interference -- SPIKE ==" in text and "== Climate risk -- SPIKE ==" in text


def spikes_of_html(text: str) -> bool:
    return text.count(">SPIKE</span>") == 4  # two in the summary table, two in the sections


@pytest.mark.parametrize(
    ("form", "check"),
    [("html", spikes_of_html), ("text", spikes_of_text), ("json", spikes_of_json)],
)
def test_report_writes_each_format(
    seeded: Engine,
    config: ConfigWriter,
    tmp_path: Path,
    form: str,
    check: Callable[[str], bool],
) -> None:
    config.extra_toml = f'[reports]\ntimezone = "{ZONE}"\n'
    out = tmp_path / f"report.{form}"
    args = ["--config", str(config.write()), "report", "--date", DAY.isoformat()]
    result = runner.invoke(app, [*args, "--format", form, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"report of 2024-09-09 ({form}) written to {out}" in result.output
    written = out.read_text(encoding="utf-8")
    assert check(written)
    if form == "html":
        html5lib.HTMLParser(strict=True).parse(written)
    with Session(seeded) as session:
        assert get_report(session, DAY) is not None


def test_report_prints_to_standard_output(seeded: Engine, config: ConfigWriter) -> None:
    config.extra_toml = f'[reports]\ntimezone = "{ZONE}"\n'
    args = ["--config", str(config.write()), "report", "--date", "2024-09-09", "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["date"] == "2024-09-09"


@pytest.mark.parametrize("value", ["2024-13-01", "yesterday", "09/09/2024"])
def test_report_refuses_a_bad_date(config: ConfigWriter, value: str) -> None:
    result = runner.invoke(app, ["--config", str(config.write()), "report", "--date", value])
    assert result.exit_code == 1
    assert "not a date" in result.output
