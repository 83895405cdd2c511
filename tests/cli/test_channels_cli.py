"""Channels from the command line and from subscriptions.yaml, against a real SQLite file and a
real webhook receiver: subscribing one, its secret shown once, lists that never show secrets,
test messages, ending, disabling, and one-line errors for bad URLs and secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.models import Channel
from tests.utils.config import ConfigWriter
from tests.utils.hookserver import Answer, HookServer, running_hook_server

runner = CliRunner()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OPEN_LOCALHOST = '[channels]\nallow_networks = ["127.0.0.0/8"]\ntimeout = "2s"\n'


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.fixture
def writer(tmp_path: Path) -> ConfigWriter:
    writer = ConfigWriter(tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}",
                          outbox=tmp_path / "out")  # fmt: skip
    writer.extra_toml = OPEN_LOCALHOST
    return writer


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with running_hook_server() as server:
        yield server


def channels(writer: ConfigWriter) -> list[Channel]:
    engine = create_db_engine(writer.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Channel)))
    finally:
        engine.dispose()


def test_subscribe_a_webhook_shows_its_secret_once_and_lists_never(
    writer: ConfigWriter, hooks: HookServer
) -> None:
    path = writer.write()
    url = hooks.url("/hooks/T0KEN-abcdef-123456")

    code, out = invoke(path, "subscribe", "bob@example.org", "election-interference",
                       "--channel", url, "--channel-name", "desk")  # fmt: skip
    again_code, again = invoke(path, "subscribe", "bob@example.org", "--channel", url)
    _, listed = invoke(path, "channels", "list")

    assert code == 0, out
    shown = f"http://127.0.0.1:{hooks.port}/…"
    assert f"channel 1 of bob@example.org added: {shown}, instant, election-interference" in out
    [secret] = re.findall(r"signing secret \(shown once, keep it now\): (whsec_\S+)", out)
    assert again_code == 0
    assert "unchanged" in again
    assert "whsec_" not in again
    assert secret not in listed
    assert f"whsec_…{secret[-4:]}" not in listed  # the list shows no secret at all
    assert "T0KEN" not in listed
    assert shown in listed
    assert "desk" in listed


def test_a_test_message_is_signed_and_says_what_came_back(
    writer: ConfigWriter, hooks: HookServer
) -> None:
    path = writer.write()
    code, out = invoke(path, "subscribe", "bob@example.org", "--channel", hooks.url("/hook"),
                       "--secret", SECRET)  # fmt: skip
    assert code == 0, out
    hooks.secret = SECRET

    code, out = invoke(path, "channels", "test", "1")

    assert code == 0, out
    assert re.match(rf"test message sent to channel 1 \(http://127\.0\.0\.1:{hooks.port}/…\): "
                    r"answered 200 in \d+\.\d\d s\n$", out)  # fmt: skip
    [received] = hooks.requests_to("/hook")
    assert received.verified, received.verify_error
    body = received.json()
    assert body["type"] == "test"
    assert body["id"].startswith("msg_test_")


def test_a_failing_test_message_is_one_line_and_exit_1(
    writer: ConfigWriter, hooks: HookServer
) -> None:
    path = writer.write()
    invoke(path, "subscribe", "bob@example.org", "--channel", hooks.url("/hook"))
    hooks.script("/hook", Answer(403, body=b"bad signature"))

    code, out = invoke(path, "channels", "test", "1")

    assert code == 1
    assert out == (f"failed: webhook http://127.0.0.1:{hooks.port}/…: answered 403 Forbidden: "
                   "bad signature\n")  # fmt: skip


def test_end_disable_and_enable_a_channel(writer: ConfigWriter, hooks: HookServer) -> None:
    path = writer.write()
    invoke(path, "subscribe", "bob@example.org", "--channel", hooks.url("/hook"))

    assert invoke(path, "channels", "disable", "1")[1] == "channel 1 disabled\n"
    _, listed = invoke(path, "channels", "list")
    assert "disabled: disabled by hand" in listed
    assert invoke(path, "channels", "enable", "1")[1] == "channel 1 enabled\n"
    code, out = invoke(path, "unsubscribe", "bob@example.org", "--channel", "1")
    assert (code, out) == (0, f"channel 1 (http://127.0.0.1:{hooks.port}/…) ended\n")
    assert invoke(path, "channels", "list")[1].endswith("0 channels\n")
    assert [c.ended_at is not None for c in channels(writer)] == [True]


def test_rotate_secret_shows_the_new_one_once(writer: ConfigWriter, hooks: HookServer) -> None:
    path = writer.write()
    invoke(path, "subscribe", "bob@example.org", "--channel", hooks.url("/hook"), "--secret",
           SECRET)  # fmt: skip

    code, out = invoke(path, "channels", "rotate-secret", "1")

    assert code == 0, out
    [secret] = re.findall(r"\(shown once, keep it now\): (whsec_\S+)", out)
    assert secret != SECRET
    assert [c.secret for c in channels(writer)] == [secret]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "http://127.0.0.1:9/x"], None),
        (["--channel", "https://10.1.2.3/hook"], "error: channel URL refused: https://10.1.2.3/…: "
         "connection to 10.1.2.3 refused: a private address (see channels.allow_networks)\n"),
        (["--channel", "mailto://u:p@example.org"], "error: channel scheme mailto:// is not "
         "supported: use a webhook"),
        (["--channel", "http://127.0.0.1:9/x", "--secret", "hunter2"], "error: channel secret: "
         "use whsec_ and base64 of 24 to 64 random bytes"),
        (["--channel", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "--secret",
          SECRET], "error: a signing secret is for webhooks (http and https URLs) only\n"),
        (["--priority", "high"], "error: --priority, --channel-name, --secret and --template go "
         "with --channel\n"),
        (["--channel", "http://127.0.0.1:9/x", "--priority", "urgent"], "error: not a priority: "
         "'urgent' (high, or any)\n"),
        (["--channel", "http://127.0.0.1:9/x", "--template", "../x"], "error: not a template "
         "name: '../x'"),
    ],
)  # fmt: skip
def test_channel_mistakes_are_one_line(
    writer: ConfigWriter, args: list[str], message: str | None
) -> None:
    path = writer.write()
    code, out = invoke(path, "subscribe", "bob@example.org", "election-interference", *args)
    if message is None:
        assert code == 0, out
        return
    assert code == 1
    assert out.startswith(message)
    assert len(out.splitlines()) == 1
    assert "hunter2" not in out


# --- subscriptions.yaml ---------------------------------------------------------------------


def with_channels(writer: ConfigWriter, *entries: dict[str, Any]) -> Path:
    writer.subscribers[0]["channels"] = list(entries)
    return writer.write()


def test_channels_from_the_file_with_credentials_from_the_environment(
    writer: ConfigWriter, hooks: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESK_HOOK_TOKEN", "s3cr3t-t0ken")
    monkeypatch.setenv("DESK_HOOK_SECRET", SECRET)
    path = with_channels(
        writer,
        {"url": hooks.url("/hooks/${DESK_HOOK_TOKEN}"), "secret": "${DESK_HOOK_SECRET}",
         "name": "desk", "priority": "high", "daily": "09:00"},
        {"url": f"ntfy://127.0.0.1:{hooks.port}/alerts", "topics": ["central-banks"]},
    )  # fmt: skip

    code, out = invoke(path, "init")
    _, listed = invoke(path, "channels", "list")

    assert code == 0, out
    assert "channels  2 added, 0 changed, 0 ended" in out
    desk, ntfy = sorted(channels(writer), key=lambda c: c.id or 0)
    assert desk.url == hooks.url("/hooks/s3cr3t-t0ken")
    assert (desk.secret, desk.priority, desk.frequency, desk.send_time) == (
        SECRET, "high", "daily", "09:00",
    )  # fmt: skip
    assert (ntfy.frequency, ntfy.kind) == ("instant", "apprise")
    assert "s3cr3t" not in listed
    assert "central-banks" in listed
    # Removed from the file, a channel ends.
    path = with_channels(writer, {"url": f"ntfy://127.0.0.1:{hooks.port}/alerts"})
    code, out = invoke(path, "init")
    assert "channels  0 added, 1 changed, 1 ended" in out


def test_a_webhook_without_a_secret_in_the_file_gets_one_made(
    writer: ConfigWriter, hooks: HookServer
) -> None:
    path = with_channels(writer, {"url": hooks.url("/hook")})

    code, out = invoke(path, "init")

    assert code == 0, out
    assert "signing secret made:" in out
    assert "monitor channels rotate-secret 1" in out
    [channel] = channels(writer)
    assert channel.secret is not None
    assert channel.secret not in out


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "http://127.0.0.1:9/${NOPE_NOT_SET}"}, "subscribers[0].channels[0].url: "
         "environment variable NOPE_NOT_SET is not set"),
        ({"url": "http://127.0.0.1:9/x", "secret": "short"}, "subscribers[0].channels[0].secret: "
         "channel secret: use whsec_"),
        ({"url": "irc://irc.example.org/#news"}, "subscribers[0].channels[0].url: channel "
         "scheme irc:// is not supported"),
        ({"url": "https://169.254.169.254/latest"}, "subscribers[0].channels[0].url: channel "
         "URL refused: https://169.254.169.254/…: connection to 169.254.169.254 refused: a "
         "link-local address"),
        ({"url": "http://127.0.0.1:9/x", "topics": ["nope"]}, "subscribers[0].channels[0]."
         "topics[0]: unknown topic 'nope'"),
        ({"url": "http://127.0.0.1:9/x", "instant": True, "daily": "08:00"},
         "subscribers[0].channels[0]: give one schedule, not instant and daily"),
        ({"url": "http://127.0.0.1:9/x", "colour": "red"}, "subscribers[0].channels[0].colour: "
         "unknown key"),
    ],
)  # fmt: skip
def test_channel_mistakes_in_the_file_name_the_line(
    writer: ConfigWriter, entry: dict[str, Any], message: str
) -> None:
    writer.extra_toml = ""  # 127.0.0.1 is refused here, which the first cases do not reach
    if "127.0.0.1" in entry["url"]:
        writer.extra_toml = OPEN_LOCALHOST
    path = with_channels(writer, entry)

    code, out = invoke(path, "init")

    assert code == 1
    assert re.match(r"error: \S+subscriptions\.yaml:\d+: ", out), out
    assert message in out
    assert len(out.splitlines()) == 1
