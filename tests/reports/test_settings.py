"""The ``[reports]`` settings: defaults, and mistakes reported with the key at fault."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.reports import ReportRules
from monitor.settings import ReportsSettings, load_settings


def test_defaults() -> None:
    rules = ReportRules.from_settings(ReportsSettings())
    assert rules == ReportRules()
    assert (rules.spike_z, rules.spike_min_articles, rules.baseline_days) == (3.0, 5, 28)
    assert (rules.chart_days, rules.failing_for) == (30, timedelta(days=1))
    assert ReportsSettings().build_at == "07:00"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('timezone = "Mars/Olympus"', "reports.timezone: unknown time zone 'Mars/Olympus'"),
        ('build_at = "7am"', "reports.build_at: not a local time: '7am'"),
        ('build_at = "24:00"', "reports.build_at: not a local time"),
        ("spike_z = 0", "reports.spike_z: Input should be greater than 0"),
        ('failing_for = "soon"', "reports.failing_for: not a duration"),
        ("spike_threshold = 2", "reports.spike_threshold: unknown setting"),
    ],
)
def test_mistakes_name_the_setting(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(f"[reports]\n{line}\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        load_settings(path)
    assert error.value.line == 2


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_REPORTS_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("MONITOR_REPORTS_REVIEWERS", '["ada@example.org"]')
    (tmp_path / "monitor.toml").write_text("")
    settings = load_settings(tmp_path)
    assert settings.reports.timezone == "Europe/Berlin"
    assert settings.reports.reviewers == ["ada@example.org"]
