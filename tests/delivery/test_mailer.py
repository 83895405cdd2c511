"""Mail transports against a real SMTP server on 127.0.0.1, and files; retry timing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme

from monitor.delivery.mailer import FileTransport, RateLimiter, SmtpTransport, retry_at
from monitor.errors import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TransportUnavailableError,
)
from monitor.settings import MailSettings
from tests.utils.smtpserver import SmtpServer, free_port

TEXT = "Hello Ada,\n\nÉlection news · « quoted »\n.a line starting with a dot\n.\nThe end.\n"
HTML = "<p>Hello <b>Ada</b>, Élection news</p>\n"


def message(number: int = 1, to: str = "ada@example.org") -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = f"[monitor] digest {number}: Élection"
    msg["From"] = "monitor <monitor@example.net>"
    msg["To"] = f"Ada <{to}>"
    msg["Message-ID"] = f"<digest.{number:04d}@example.net>"
    msg.set_content(TEXT)
    msg.add_alternative(HTML, subtype="html")
    return msg


def unix(text: str) -> str:
    """``text`` with CRLF line ends (as parsed from the wire) turned into LF."""
    return text.replace("\r\n", "\n")


def smtp_settings(port: int) -> MailSettings:
    return MailSettings(
        transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=timedelta(seconds=5),
    )


async def send_all(transport: SmtpTransport, *messages: EmailMessage) -> None:
    try:
        for msg in messages:
            await transport.send(msg)
    finally:
        await transport.close()


def send(port: int, *messages: EmailMessage) -> None:
    asyncio.run(send_all(SmtpTransport(smtp_settings(port)), *messages))


def count_connections(server: SmtpServer) -> list[str]:
    """Record each EHLO greeting: one per SMTP connection, as every client opens with it."""
    greetings: list[str] = []

    async def handle_EHLO(
        smtp: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        greetings.append(hostname)
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return responses

    server.handler.handle_EHLO = handle_EHLO  # type: ignore[attr-defined]
    return greetings


def test_smtp_message_arrives_intact(smtp_server: SmtpServer) -> None:
    sent = message()

    send(smtp_server.port, sent)

    [received] = smtp_server.messages
    assert received.mail_from == "monitor@example.net"
    assert received.recipients == ["ada@example.org"]
    got = received.message
    for header in ("Subject", "From", "To", "Message-ID"):
        assert got[header] == sent[header]
    text, html = got.get_body(("plain",)), got.get_body(("html",))
    assert text is not None
    assert html is not None
    assert unix(text.get_content()) == TEXT
    assert unix(html.get_content()) == HTML


def test_smtp_temporary_failure_then_success(smtp_server: SmtpServer) -> None:
    smtp_server.handler.replies = ["451 4.3.0 try later"]
    transport = SmtpTransport(smtp_settings(smtp_server.port))

    async def scenario() -> None:
        with pytest.raises(TemporaryDeliveryError, match="451"):
            await transport.send(message(1))
        await transport.send(message(2))
        await transport.close()

    asyncio.run(scenario())

    assert smtp_server.handler.attempts == 2
    assert [r.message["Message-ID"] for r in smtp_server.messages] == ["<digest.0002@example.net>"]


def test_smtp_permanent_failure_carries_the_reason(smtp_server: SmtpServer) -> None:
    smtp_server.handler.replies = ["550 5.7.1 message content rejected by policy"]

    with pytest.raises(PermanentDeliveryError) as caught:
        send(smtp_server.port, message())

    assert "550" in str(caught.value)
    assert "message content rejected by policy" in str(caught.value)
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("550 5.1.1 no such mailbox here", PermanentDeliveryError),
        ("450 4.2.1 mailbox busy", TemporaryDeliveryError),
    ],
)
def test_smtp_refused_recipient(
    smtp_server: SmtpServer, reply: str, error: type[Exception]
) -> None:
    smtp_server.handler.rcpt_replies = [reply]
    transport = SmtpTransport(smtp_settings(smtp_server.port))

    async def scenario() -> None:
        with pytest.raises(error) as caught:
            await transport.send(message(1))
        assert reply.split(" ", 2)[2] in str(caught.value)
        await transport.send(message(2))
        await transport.close()

    asyncio.run(scenario())

    assert [r.message["Message-ID"] for r in smtp_server.messages] == ["<digest.0002@example.net>"]


def test_smtp_closed_port_is_temporary_and_stops_the_batch() -> None:
    port = free_port()

    with pytest.raises(TransportUnavailableError, match=f"cannot reach 127.0.0.1:{port}"):
        send(port, message())


def test_smtp_messages_on_one_transport_share_one_connection(smtp_server: SmtpServer) -> None:
    connections = count_connections(smtp_server)

    send(smtp_server.port, message(1), message(2), message(3))

    assert len(smtp_server.messages) == 3
    assert len(connections) == 1


def test_smtp_separate_transports_use_separate_connections(smtp_server: SmtpServer) -> None:
    connections = count_connections(smtp_server)

    send(smtp_server.port, message(1))
    send(smtp_server.port, message(2))

    assert len(smtp_server.messages) == 2
    assert len(connections) == 2


def parse_file(path: Path) -> EmailMessage:
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_file_transport_writes_a_parseable_eml_named_by_message_id(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"

    asyncio.run(FileTransport(outbox).send(message(7)))

    [path] = outbox.iterdir()
    assert path.suffix == ".eml"
    assert "digest.0007" in path.stem
    assert "example.net" in path.stem
    written = parse_file(path)
    assert written["Message-ID"] == "<digest.0007@example.net>"
    text = written.get_body(("plain",))
    assert text is not None
    assert unix(text.get_content()) == TEXT


def test_file_transport_same_message_twice_leaves_one_file(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)

    async def twice() -> None:
        await transport.send(message(7))
        await transport.send(message(7))
        await transport.send(message(8))

    asyncio.run(twice())

    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2
    assert all(name.endswith(".eml") for name in names)


def test_file_transport_keeps_hostile_message_id_inside_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "a" / "outbox"
    hostile = message()
    hostile.replace_header("Message-ID", "<../../../escape/evil@example.net>")

    asyncio.run(FileTransport(outbox).send(hostile))

    assert [p.parent for p in tmp_path.rglob("*.eml")] == [outbox]


def test_file_transport_unwritable_outbox_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the directory should be")

    with pytest.raises(TemporaryDeliveryError, match="outbox"):
        asyncio.run(FileTransport(blocker).send(message()))


NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (0, timedelta(minutes=5)),
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (3, timedelta(minutes=20)),
        (4, timedelta(minutes=40)),
        (5, timedelta(minutes=60)),
        (6, timedelta(minutes=60)),
        (1000, timedelta(minutes=60)),
    ],
)
def test_retry_at_doubles_and_caps(attempts: int, delay: timedelta) -> None:
    settings = MailSettings(
        retry_backoff=timedelta(minutes=5), max_retry_backoff=timedelta(hours=1)
    )

    assert retry_at(NOW, attempts, settings) == NOW + delay


def test_retry_at_default_cap_is_six_hours() -> None:
    assert retry_at(NOW, 50, MailSettings()) == NOW + timedelta(hours=6)


class FakeTime:
    """A monotonic clock that only moves when someone sleeps (or the test moves it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def limiter(self, per_minute: int) -> RateLimiter:
        return RateLimiter(per_minute, clock=self.clock, sleep=self.sleep)


@pytest.mark.parametrize(
    ("per_minute", "idle_before", "starts"),
    [
        (0, [0, 0, 0, 0], [0, 0, 0, 0]),
        (60, [0, 0, 0, 0], [0, 1, 2, 3]),
        (120, [0, 0, 0, 0], [0, 0.5, 1, 1.5]),
        (30, [0, 1, 0.5, 0], [0, 2, 4, 6]),
        # After a quiet spell longer than the interval, the next message goes at once.
        (60, [0, 5, 0, 0.25], [0, 5, 6, 7]),
        (1, [10, 0], [10, 70]),
    ],
)
def test_rate_limiter_spaces_messages(
    per_minute: int, idle_before: list[float], starts: list[float]
) -> None:
    time = FakeTime()
    limiter = time.limiter(per_minute)

    async def scenario() -> list[float]:
        started = []
        for idle in idle_before:
            time.now += idle
            await limiter.wait()
            started.append(time.now)
        return started

    assert asyncio.run(scenario()) == starts


def test_smtp_rate_limit_counts_every_attempt(smtp_server: SmtpServer) -> None:
    smtp_server.handler.replies = ["451 4.3.0 try later"]
    time = FakeTime()
    transport = SmtpTransport(smtp_settings(smtp_server.port), limiter=time.limiter(20))
    started: list[float] = []

    async def scenario() -> None:
        for number in range(4):
            with contextlib.suppress(TemporaryDeliveryError):
                await transport.send(message(number))
            started.append(time.now)
        await transport.close()

    asyncio.run(scenario())

    assert started == [0, 3, 6, 9]
    assert smtp_server.handler.attempts == 4
    assert len(smtp_server.messages) == 3


@pytest.mark.parametrize(("per_minute", "interval"), [(0, 0.0), (1, 60.0), (30, 2.0), (600, 0.1)])
def test_smtp_transport_takes_its_rate_limit_from_the_settings(
    per_minute: int, interval: float
) -> None:
    settings = MailSettings(smtp_host="127.0.0.1", rate_limit_per_minute=per_minute)

    assert SmtpTransport(settings).limiter.interval == interval


# --- TLS and AUTH against a server that requires them ----------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    """A throwaway CA: the server's certificate for 127.0.0.1 is signed by it."""
    return trustme.CA()


@pytest.fixture
def ca_file(certificate_authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return path


CREDENTIALS = ("monitor@example.net", "s3cret")


# aiosmtpd cannot tell that implicit TLS is TLS, and warns about AUTH without it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize(
    ("server_security", "client_security", "password", "outcome"),
    [
        ("starttls", "starttls", "s3cret", "sent"),
        ("tls", "tls", "s3cret", "sent"),
        ("starttls", "starttls", "wrong", "refused the login"),
        ("tls", "tls", "wrong", "refused the login"),
        # A client that will not encrypt never gets to log in to a server that insists.
        ("starttls", "none", "s3cret", "cannot reach"),
        # A client expecting TLS from the first byte cannot talk to a plain-text greeting.
        ("starttls", "tls", "s3cret", "cannot reach"),
    ],
)
def test_smtp_tls_and_login(
    certificate_authority: trustme.CA,
    ca_file: Path,
    server_security: str,
    client_security: str,
    password: str,
    outcome: str,
) -> None:
    server = SmtpServer(
        security=server_security,
        certificate_authority=certificate_authority,
        credentials=CREDENTIALS,
    )
    server.start()
    try:
        settings = MailSettings(
            transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security=client_security,
            smtp_username=CREDENTIALS[0],
            smtp_password=password,
            smtp_ca_file=ca_file,
            smtp_timeout=timedelta(seconds=5),
        )
        transport = SmtpTransport(settings)
        if outcome == "sent":
            asyncio.run(send_all(transport, message()))
            assert [m.message["Message-ID"] for m in server.messages] == [
                "<digest.0001@example.net>"
            ]
            assert server.logins == [(CREDENTIALS[0], True)]
        else:
            with pytest.raises(TransportUnavailableError, match=outcome) as error:
                asyncio.run(send_all(transport, message()))
            assert f"127.0.0.1:{server.port}" in str(error.value)
            assert server.messages == []
    finally:
        server.stop()


def test_smtp_certificate_from_an_unknown_ca_is_refused(
    certificate_authority: trustme.CA,
) -> None:
    with running_tls_server(certificate_authority) as server:
        settings = MailSettings(
            transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="tls",
            smtp_timeout=timedelta(seconds=5),
        )
        with pytest.raises(TransportUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(send_all(SmtpTransport(settings), message()))
        assert server.messages == []


def test_smtp_unreadable_ca_file_says_which_file(tmp_path: Path) -> None:
    settings = MailSettings(
        transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="starttls",
        smtp_ca_file=tmp_path / "missing.pem",
    )
    with pytest.raises(TransportUnavailableError, match=r"smtp_ca_file .*missing\.pem"):
        asyncio.run(send_all(SmtpTransport(settings), message()))


@contextlib.contextmanager
def running_tls_server(certificate_authority: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(security="tls", certificate_authority=certificate_authority)
    server.start()
    try:
        yield server
    finally:
        server.stop()
