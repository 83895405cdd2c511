"""Settings: TOML file, MONITOR_* overrides, and errors that say where and what."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError, UsageError
from monitor.settings import load_settings, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        (" 1w ", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["", "soon", "15 minutes", "-5m", "1y", True])
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration(value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database.url == "sqlite:///var/monitor.db"
    assert settings.mail.uses_smtp() is False
    assert settings.config_dir == Path("config")


def test_file_values_and_companion_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, '[schedule]\npoll_interval = "5m"\n[files]\ntopics = "t.yaml"\n')
    settings = load_settings(path)
    assert settings.schedule.poll_interval == timedelta(minutes=5)
    assert settings.config_file(settings.files.topics) == tmp_path / "t.yaml"
    assert load_settings(tmp_path).schedule.poll_interval == timedelta(minutes=5)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[mail]\nsmtp_host = "mail.example"\nsmtp_port = 25\n')
    monkeypatch.setenv("MONITOR_MAIL_SMTP_PORT", "2525")
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://db/monitor")
    settings = load_settings(path)
    assert settings.mail.smtp_host == "mail.example"
    assert settings.mail.smtp_port == 2525
    assert settings.database.url == "postgresql://db/monitor"
    assert settings.mail.uses_smtp()


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CONFIG", str(_write(tmp_path, "[digest]\nmax_articles = 7\n")))
    assert load_settings().digest.max_articles == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[mail]\nsmtp_port = "many"\n', r"monitor.toml:2: mail.smtp_port: Input should be"),
        ("[mail]\n\nsmtp_hots = 'x'\n", r"monitor.toml:3: mail.smtp_hots: unknown setting"),
        ('[schedule]\ntick = "soon"\n', r"monitor.toml:2: schedule.tick: not a duration"),
        ("[nonsense]\na = 1\n", r"monitor.toml:1: nonsense: unknown setting"),
        ("[mail\nsmtp_port = 1\n", r"monitor.toml:1: not valid TOML"),
        ('[mail]\ntransport = "pigeon"\n', r"monitor.toml:2: mail.transport: Input should be"),
    ],
)
def test_file_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(_write(tmp_path, text))


def test_environment_errors_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_FETCH_CONCURRENCY", "zero")
    with pytest.raises(ConfigError, match="environment variable MONITOR_FETCH_CONCURRENCY: "):
        load_settings(_write(tmp_path, ""))


def test_misspelt_environment_variable_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_MAIL_SMTP_HOTS", "mail.example")
    with pytest.raises(ConfigError, match="MONITOR_MAIL_SMTP_HOTS: unknown setting"):
        load_settings(_write(tmp_path, ""))


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("variable", "value", "section", "key", "expected"),
    [
        ("MONITOR_REPORTS_REVIEWERS", "a@b.c", "reports", "reviewers", ["a@b.c"]),
        ("MONITOR_REPORTS_REVIEWERS", "a@b.c, d@e.f", "reports", "reviewers", ["a@b.c", "d@e.f"]),
        ("MONITOR_REPORTS_REVIEWERS", '["a@b.c", "d@e.f"]', "reports", "reviewers",
         ["a@b.c", "d@e.f"]),
        ("MONITOR_REPORTS_REVIEWERS", "", "reports", "reviewers", []),
        ("MONITOR_FETCH_ALLOW_NETWORKS", "10.0.0.0/8", "fetch", "allow_networks", ["10.0.0.0/8"]),
        ("MONITOR_FETCH_ALLOW_NETWORKS", '["10.0.0.0/8","127.0.0.0/8"]', "fetch",
         "allow_networks", ["10.0.0.0/8", "127.0.0.0/8"]),
        ("MONITOR_STORIES_TRACKING_PARAMETERS", "src,ref", "stories", "tracking_parameters",
         ["src", "ref"]),
    ],
)  # fmt: skip
def test_list_settings_from_the_environment_plain_or_json(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    section: str,
    key: str,
    expected: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    settings = load_settings(_write(tmp_path, ""))
    assert getattr(getattr(settings, section), key) == expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MONITOR_FETCH_ALLOW_NETWORKS", "10.0.0.0/33",
         "environment variable MONITOR_FETCH_ALLOW_NETWORKS: not a network: '10.0.0.0/33'"),
        ("MONITOR_FETCH_ALLOW_NETWORKS", "10.0.0.0/8, nonsense",
         "environment variable MONITOR_FETCH_ALLOW_NETWORKS: not a network: 'nonsense'"),
        ("MONITOR_REPORTS_REVIEWERS", '["a@b.c"',
         "environment variable MONITOR_REPORTS_REVIEWERS: not a list: "),
        ("MONITOR_REPORTS", "{bad", "environment variable MONITOR_REPORTS: not valid JSON"),
    ],
)  # fmt: skip
def test_bad_environment_values_are_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    # The file has the key too: the value at fault is the variable's, and it is named.
    monkeypatch.setenv(variable, value)
    path = _write(tmp_path, '[fetch]\nallow_networks = ["127.0.0.0/8"]\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)
    assert "monitor.toml" not in str(raised.value)
