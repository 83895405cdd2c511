"""``monitor subscribe``, ``unsubscribe`` and ``subscriptions list`` against a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from tests.utils.config import ConfigWriter

runner = CliRunner()
ELECTION, DISINFO, BANKS = "election-interference", "russian-disinformation", "central-banks"


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of the tables in ``output``."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """monitor.toml of a configuration on a SQLite file, with the default analyst subscriber."""
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    return writer.write()


@pytest.mark.parametrize(
    "command", [["subscribe"], ["unsubscribe"], ["subscriptions", "list"]], ids=" ".join
)
def test_commands_have_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("options", "frequency", "when"),
    [
        ([], "daily", "08:00"),
        (["--instant"], "instant", ""),
        (["--hourly"], "hourly", ""),
        (["--daily", "18:30"], "daily", "18:30"),
        (["--weekly", "fri 17:00"], "weekly", "fri 17:00"),
        (["--weekly", "Monday 07:05"], "weekly", "mon 07:05"),
    ],
)
def test_subscribe_then_list(path: Path, options: list[str], frequency: str, when: str) -> None:
    code, output = invoke(
        path, "subscribe", "Bob@Example.ORG", BANKS, ELECTION, "--tz", "America/New_York", *options
    )

    assert code == 0, output
    assert output.splitlines() == [
        "new subscriber Bob@example.org",
        f"subscribed: {BANKS}, {ELECTION}",
    ]
    code, output = invoke(path, "subscriptions", "list", "--email", "Bob@example.org")
    assert code == 0, output
    assert table_rows(output) == [
        ["Bob@example.org", "America/New_York", topic, frequency, when, "active"]
        for topic in (BANKS, ELECTION)
    ]
    assert output.splitlines()[-1] == "2 subscriptions"


def test_subscribe_again_reschedules_and_leaves_the_rest(path: Path) -> None:
    invoke(path, "subscribe", "bob@example.org", BANKS)

    code, output = invoke(path, "subscribe", "bob@example.org", BANKS, ELECTION, "--hourly")

    assert code == 0, output
    assert output.splitlines() == [f"subscribed: {ELECTION}", f"rescheduled: {BANKS}"]
    code, output = invoke(path, "subscribe", "bob@example.org", BANKS)
    assert output.splitlines() == [f"already subscribed: {BANKS}"]
    _, listing = invoke(path, "subscriptions", "list", "--email", "bob@example.org")
    assert [row[3] for row in table_rows(listing)] == ["hourly", "hourly"]


def test_unsubscribe_one_topic_then_all_then_subscribe_again(path: Path) -> None:
    invoke(path, "subscribe", "bob@example.org", BANKS, ELECTION, DISINFO)

    one = invoke(path, "unsubscribe", "bob@example.org", BANKS)
    rest = invoke(path, "unsubscribe", "bob@example.org")
    nothing = invoke(path, "unsubscribe", "bob@example.org")
    again = invoke(path, "subscribe", "bob@example.org", BANKS, "--instant")

    assert one == (0, f"unsubscribed bob@example.org from {BANKS} (1 subscriptions ended)\n")
    assert rest == (0, "unsubscribed bob@example.org from every topic (2 subscriptions ended)\n")
    assert nothing == (0, "bob@example.org had no active subscription to every topic\n")
    assert again == (0, f"subscribed again: {BANKS}\n")
    _, listing = invoke(path, "subscriptions", "list", "--email", "bob@example.org")
    assert [(row[2], row[3], row[5]) for row in table_rows(listing)] == [
        (BANKS, "instant", "active"),
        (ELECTION, "daily", "unsubscribed"),
        (DISINFO, "daily", "unsubscribed"),
    ]


def test_unsubscribe_survives_the_configuration_file(path: Path) -> None:
    # analyst@example.org is listed in subscriptions.yaml, which every command syncs first.
    code, output = invoke(path, "unsubscribe", "analyst@example.org", DISINFO)
    assert code == 0, output

    code, output = invoke(path, "init")

    assert code == 0, output
    assert f"kept unsubscribed: analyst@example.org {DISINFO}" in output
    _, listing = invoke(path, "subscriptions", "list")
    assert [(row[0], row[2], row[5]) for row in table_rows(listing)] == [
        ("analyst@example.org", ELECTION, "active"),
        ("analyst@example.org", DISINFO, "unsubscribed"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["subscribe", "not-an-address", BANKS], "not an e-mail address: 'not-an-address'"),
        (["subscribe", "b@example.org", BANKS, "--daily", "25:00"], "not a time of day: '25:00'"),
        (["subscribe", "b@example.org", BANKS, "--weekly", "someday 08:00"], "not a weekly time"),
        (["subscribe", "b@example.org", BANKS, "--tz", "Mars/Olympus"], "unknown time zone"),
        (["subscribe", "b@example.org", "nope"], "no topic 'nope'"),
        (
            ["subscribe", "b@example.org", BANKS, "--hourly", "--daily", "08:00"],
            "give one schedule, not hourly and daily",
        ),
        (["unsubscribe", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
        (["unsubscribe", "analyst@example.org", "nope"], "no topic 'nope'"),
        (["subscriptions", "list", "--email", "nope"], "not an e-mail address"),
    ],
)
def test_user_errors_are_one_line(path: Path, args: list[str], message: str) -> None:
    code, output = invoke(path, *args)

    assert code == 1
    assert output.startswith("error: ")
    assert len(output.splitlines()) == 1
    assert message in output
    # Nothing was written: no new subscriber, no new subscription.
    _, listing = invoke(path, "subscriptions", "list")
    assert listing.splitlines()[-1] == "2 subscriptions"
