"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

# How long rendezvous messages wait for company before going on alone.
RENDEZVOUS_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """Accepts mail, or first answers with the scripted replies (``"451 4.3.0 try later"``).

    ``replies`` answer DATA, ``rcpt_replies`` answer RCPT TO, each used once in order. With
    ``rendezvous`` set to n, the first messages wait at DATA until n are in flight at once (or
    ``RENDEZVOUS_TIMEOUT`` passes), so a test can see that several senders really overlapped.
    """

    messages: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    attempts: int = 0
    rendezvous: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    _met: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self._wait_for_company()
            if self.replies:
                return self.replies.pop(0)
            self.messages.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
            return "250 Message accepted for delivery"
        finally:
            self.in_flight -= 1

    async def _wait_for_company(self) -> None:
        if not self.rendezvous or self._met.is_set():
            return
        if self.in_flight >= self.rendezvous:
            self._met.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._met.wait(), RENDEZVOUS_TIMEOUT)

    def message_ids(self) -> list[str]:
        """The Message-ID of every message accepted, in order."""
        return [str(received.message["Message-ID"]) for received in self.messages]


class SmtpServer:
    """A started aiosmtpd controller with its handler.

    ``security`` "starttls" requires STARTTLS before anything else, "tls" speaks TLS from the
    first byte; either serves a certificate for 127.0.0.1 from ``certificate_authority``.
    With ``credentials`` the server requires AUTH with that login and password.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        security: str = "none",
        certificate_authority: Any = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.handler = RecordingHandler()
        self.port = port or free_port()
        self.logins: list[tuple[str, bool]] = []
        options: dict[str, Any] = {}
        if security != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
            if security == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                options.update(ssl_context=context)
        if credentials is not None:
            options.update(
                authenticator=self._authenticator(credentials),
                auth_required=True,
                # Over implicit TLS aiosmtpd sees no STARTTLS; the connection is encrypted.
                auth_require_tls=security == "starttls",
            )
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.running = False

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            login = auth_data.login.decode()
            accepted = (login, auth_data.password.decode()) == credentials
            self.logins.append((login, accepted))
            return AuthResult(success=accepted, handled=False)

        return authenticate

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        """Stop listening (once; stopping again does nothing)."""
        if self.running:
            self.controller.stop()
            self.running = False


@contextmanager
def running_smtp_server(port: int | None = None) -> Iterator[SmtpServer]:
    """A started SMTP server on 127.0.0.1, stopped afterwards."""
    server = SmtpServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
