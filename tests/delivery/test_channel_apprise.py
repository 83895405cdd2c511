"""Apprise channels through real parts: Apprise's own plugins posting to servers on 127.0.0.1 (a
json:// and a form:// target, an ntfy-style server, and "Slack", "Telegram" and "Discord" over
TLS, their host names resolved to a local server whose certificate a throwaway CA signed), with
the address guard in force. A hostile title arrives inert on every one of them."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import trustme

from monitor.delivery.channels.compose import ChatMessage
from monitor.delivery.channels.send import ChannelJob, ChannelSender
from monitor.delivery.channels.targets import check_channel_url
from monitor.delivery.digest import AlsoCarried, Digest, DigestArticle, DigestSection
from monitor.delivery.render import build_environment
from monitor.errors import (
    ChannelGoneError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    UsageError,
)
from monitor.models import Channel
from monitor.settings import Settings
from monitor.sources.guard import AddressPolicy
from tests.utils.hookserver import Answer, HookServer, running_hook_server

NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
HOSTILE = "<!channel> @everyone [click here](https://evil.example/x) <@U0123> &#64;here"
LOCAL = AddressPolicy.from_strings(["127.0.0.0/8"], setting="channels.allow_networks")
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"
TELEGRAM = "tgram://123456789:abcdefg_hijklmnop/12315544/"
DISCORD = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"


def hostile_digest() -> Digest:
    article = DigestArticle(
        title=HOSTILE,
        url="https://news.example.com/a?b=1&c=(2)",
        outlet="@here News",
        published_at=NOW,
        first_seen_at=NOW,
        excerpt="Read [this](https://evil.example/y) <https://evil.example/z|now> @room",
        terms=("election",),
        also=(AlsoCarried("Other <b>News</b>", "https://other.example.com/a"),),
    )
    return Digest(
        delivery_id=7,
        message_id="msg_0",
        email="analyst@example.org",
        name="Ada",
        timezone="UTC",
        created_at=NOW,
        sections=[DigestSection("election-interference", "Election interference", [article])],
        subscriber_id=1,
        frequency="instant",
        articles=2,
    )


def channel(url: str) -> Channel:
    target = check_channel_url(url, None)
    return Channel(id=3, subscriber_id=1, kind=target.kind, url=target.url,
                   url_hash=target.url_hash, shown_url=target.shown_url)  # fmt: skip


def sender(tmp_path: Path, **resolve: Any) -> ChannelSender:
    settings = Settings.model_validate(
        {"channels": {"allow_networks": ["127.0.0.0/8"], "timeout": "2s"},
         "web": {"secret_key": "k" * 32}}
    )  # fmt: skip
    return ChannelSender(settings, build_environment(None), **resolve)


def send(sender: ChannelSender, url: str, digest: Digest | None = None) -> str:
    job = ChannelJob(7, "msg_0123456789abcdef01234567", "ch3/instant:x", channel(url),
                     digest or hostile_digest())  # fmt: skip
    return asyncio.run(sender.send(job))


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with running_hook_server() as server:
        yield server


def assert_inert(text: str, dialect: str = "markdown") -> None:
    """No mention and no Slack command survives; no link to evil.example, as the dialect
    reads links (Markdown's ``[text](url)`` and ``<url>``, Slack's ``<url|text>``, HTML's
    ``href``); escaped, they are words."""
    assert "@everyone" not in text
    assert "@room" not in text
    assert "<@U0123>" not in text
    assert "<!channel>" not in text
    assert "&#64;here" not in text
    if dialect == "markdown":
        assert re.search(r"(?<!\\)\]\(https://evil", text) is None
        assert re.search(r"(?<!\\)<https://evil", text) is None
    if dialect == "slack":
        assert "<https://evil" not in text
    if dialect == "html":
        assert 'href="https://evil' not in text


def test_json_target_gets_the_message_and_the_idempotency_key(
    hooks: HookServer, tmp_path: Path
) -> None:
    answer = send(sender(tmp_path), f"json://127.0.0.1:{hooks.port}/notify")

    [received] = hooks.requests_to("/notify")
    body = received.json()
    assert answer == "accepted (markdown)"
    assert received.headers["idempotency-key"] == "msg_0123456789abcdef01234567"
    assert body["idempotency_key"] == "msg_0123456789abcdef01234567"
    assert body["title"] == ""
    assert body["message"].startswith("**\\[monitor\\] Election interference: ")
    assert "[\\<\\!channel\\>" in body["message"]
    assert_inert(body["message"])


def test_form_target_gets_the_fields(hooks: HookServer, tmp_path: Path) -> None:
    send(sender(tmp_path), f"form://127.0.0.1:{hooks.port}/form")

    [received] = hooks.requests_to("/form")
    assert received.headers["idempotency-key"] == "msg_0123456789abcdef01234567"
    fields = parse_qs(received.body.decode())
    assert fields["idempotency_key"] == ["msg_0123456789abcdef01234567"]
    assert_inert(fields["message"][0])


def test_ntfy_gets_plain_text_with_its_title(hooks: HookServer, tmp_path: Path) -> None:
    answer = send(sender(tmp_path), f"ntfy://127.0.0.1:{hooks.port}/alerts")

    [received] = hooks.requests_to("/")
    body = received.json()
    assert answer == "accepted (text)"
    assert body["topic"] == "alerts"
    assert body["title"].startswith(
        "[monitor] Election interference: <\u200b!channel> @\u200beveryone"
    )
    assert body["message"].startswith(
        "Election interference (1)\n- <\u200b!channel> @\u200beveryone"
    )
    assert "https://news.example.com/a?b=1&c=%282%29" in body["message"]
    assert_inert(body["title"] + body["message"], "text")


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (Answer(503), TemporaryDeliveryError, "error=503"),
        (Answer(429), TemporaryDeliveryError, "error=429"),
        (Answer(404), PermanentDeliveryError, "error=404"),
        (Answer(410), ChannelGoneError, "(the channel is disabled)"),
        (Answer(200, delay=4.0), TemporaryDeliveryError, "no complete answer within 2 s"),
    ],
)
def test_what_an_apprise_service_answer_amounts_to(
    hooks: HookServer, tmp_path: Path, answer: Answer, error: type[Exception], message: str
) -> None:
    hooks.script("/notify", answer)
    url = f"json://user:hunter2secret@127.0.0.1:{hooks.port}/notify"

    with pytest.raises(error) as raised:
        send(sender(tmp_path), url)

    assert type(raised.value) is error
    assert message in str(raised.value)
    assert "hunter2secret" not in str(raised.value)
    assert str(raised.value).startswith(f"channel json://127.0.0.1:{hooks.port}/…: ")


def test_apprise_connections_pass_the_address_guard(hooks: HookServer, tmp_path: Path) -> None:
    closed = sender(tmp_path)
    closed.policy = AddressPolicy(setting="channels.allow_networks")

    with pytest.raises(PermanentDeliveryError, match="loopback address") as raised:
        send(closed, f"json://127.0.0.1:{hooks.port}/notify")

    assert "see channels.allow_networks" in str(raised.value)
    assert hooks.received == []


def test_a_name_resolving_to_a_private_address_is_refused(tmp_path: Path) -> None:
    rebinding = sender(tmp_path, sync_resolver=lambda _host, port: [("10.1.2.3", port)])

    with pytest.raises(
        PermanentDeliveryError, match=r"hooks\.slack\.com \(resolved to 10\.1\.2\.3"
    ):
        send(rebinding, SLACK)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("json://169.254.169.254/latest", "link-local address"),
        ("ntfy://10.0.0.5/alerts", "private address"),
        ("https://127.0.0.1/hook", "loopback address"),
        ("http://[::1]:8080/hook", "loopback address"),
    ],
)
def test_channel_urls_to_internal_addresses_are_refused_when_added(url: str, refused: str) -> None:
    with pytest.raises(UsageError, match=refused) as raised:
        check_channel_url(url, AddressPolicy(setting="channels.allow_networks"))
    assert str(raised.value).startswith("channel URL refused: ")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mailto://user:pass@gmail.com", "mailto:// is not supported"),
        ("mqtt://broker/topic", "mqtt:// is not supported"),
        ("slack://", "not a valid Apprise URL"),
        ("hooks.example.org/x", "not a channel URL"),
        ("ftp://example.org/x", "ftp:// is not supported"),
    ],
)
def test_channel_urls_that_are_not_channels(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_channel_url(url, LOCAL)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.org/services/T000/B000/XXXXXXXX?token=abc", "https://hooks.example.org/…"),
        ("https://user:pw@hooks.example.org:8443/", "https://hooks.example.org:8443/"),
        (SLACK, "slack://T...2/A...D/T...Q/%23general/"),
        (TELEGRAM, "tgram://1...p/12315544/"),
        ("json://user:pass@hooks.example.org/secret/path", "json://hooks.example.org/…"),
    ],
)  # fmt: skip
def test_channel_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert check_channel_url(url, None).shown_url == shown


# --- chat services over TLS, resolved to a local server -------------------------------------


@pytest.fixture
def tls_hooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HookServer]:
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.slack.com", "api.telegram.org", "discord.com")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    # requests (Apprise's HTTP client) trusts this bundle instead of certifi's.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with running_hook_server(ssl_context=context) as server:
        server.script("/bot123456789:abcdefg_hijklmnop/sendMessage",
                      Answer(200, {"Content-Type": "application/json"},
                             b'{"ok": true, "result": {"message_id": 1}}'))  # fmt: skip
        yield server


def home(server: HookServer) -> Any:
    """Every service's name resolves to a public address, and connections go home."""
    return lambda _host, port: [("127.0.0.1", server.port)] if port == 443 else []


@pytest.mark.parametrize(
    ("url", "path", "text_of", "dialect"),
    [
        (SLACK, "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
         lambda body: body["attachments"][0]["text"], "slack"),
        (TELEGRAM, "/bot123456789:abcdefg_hijklmnop/sendMessage", lambda body: body["text"],
         "html"),
        (DISCORD, "/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
         lambda body: body["content"], "markdown"),
    ],
)  # fmt: skip
def test_a_hostile_title_arrives_inert_on_chat_services(
    tls_hooks: HookServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    path: str,
    text_of: Any,
    dialect: str,
) -> None:
    chosen = sender(tmp_path, sync_resolver=home(tls_hooks))

    send(chosen, url)

    [received] = tls_hooks.requests_to(path)
    text = text_of(received.json())
    assert "Election interference" in text
    assert "news.example.com/a" in text
    assert_inert(text, dialect)


def test_slack_gets_mrkdwn_with_the_link_it_should_have(
    tls_hooks: HookServer, tmp_path: Path
) -> None:
    send(sender(tmp_path, sync_resolver=home(tls_hooks)), SLACK)

    [received] = tls_hooks.requests_to("/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    text = received.json()["attachments"][0]["text"]
    assert "<https://news.example.com/a?b=1&amp;c=%282%29|&lt;!channel&gt; @\u200beveryone" in text


def test_telegram_gets_html_with_the_link_it_should_have(
    tls_hooks: HookServer, tmp_path: Path
) -> None:
    send(sender(tmp_path, sync_resolver=home(tls_hooks)), TELEGRAM)

    [received] = tls_hooks.requests_to("/bot123456789:abcdefg_hijklmnop/sendMessage")
    body = received.json()
    assert body["parse_mode"] == "HTML"
    link = '<a href="https://news.example.com/a?b=1&amp;c=%282%29">&lt;\u200b!channel&gt;'
    assert link in body["text"]
    assert "Other &lt;b&gt;News&lt;/b&gt;" not in body["text"]  # the chat names no copies


def test_a_message_that_does_not_fit_lists_fewer_stories(
    tls_hooks: HookServer, tmp_path: Path
) -> None:
    digest = hostile_digest()
    article = digest.sections[0].articles[0]
    long = [replace(article, title=f"Story {n} " + "x" * 280) for n in range(10)]
    digest.sections[0].articles = long

    send(sender(tmp_path, sync_resolver=home(tls_hooks)), TELEGRAM, digest)

    [received] = tls_hooks.requests_to("/bot123456789:abcdefg_hijklmnop/sendMessage")
    text = received.json()["text"]
    assert len(text) <= 4096
    assert "Story 0 " in text
    assert "and 5 more stories" in text


def test_chat_message_formats_follow_the_service() -> None:
    from monitor.delivery.channels.apprise_sender import native_format
    from monitor.delivery.channels.targets import instantiate_apprise

    formats = {url.split(":")[0]: native_format(instantiate_apprise(url))
               for url in (SLACK, TELEGRAM, DISCORD, "ntfy://host/topic", "json://host/x",
                           "matrix://user:pass@host/#room")}  # fmt: skip
    assert formats == {"slack": "markdown", "tgram": "html", "discord": "markdown",
                       "ntfy": "text", "json": "markdown", "matrix": "markdown"}  # fmt: skip
    assert ChatMessage("t", "b", "text").format == "text"


def test_credentials_never_reach_the_log(
    hooks: HookServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    hooks.script("/t0pSecretTopic", Answer(404))

    with pytest.raises(PermanentDeliveryError) as raised:
        send(sender(tmp_path), f"json://user:hunter2pass@127.0.0.1:{hooks.port}/t0pSecretTopic")

    assert "error=404" in str(raised.value)
    logged = " ".join(record.getMessage() for record in caplog.records)
    for secret in ("hunter2pass", "t0pSecretTopic"):
        assert secret not in logged
        assert secret not in str(raised.value)
