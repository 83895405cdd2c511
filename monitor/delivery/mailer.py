"""Mail transports (SMTP, or ``.eml`` files) and sending what the outbox holds."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from monitor.errors import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TransportUnavailableError,
)
from monitor.settings import MailSettings

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Something that can hand a message on; raises a DeliveryError subclass when it cannot."""

    name: str

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` on, or raise TemporaryDeliveryError / PermanentDeliveryError."""


class FileTransport:
    """Write each message as an ``.eml`` file: for a machine with no SMTP server."""

    name = "files"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message: EmailMessage) -> Path:
        """Where ``message`` goes; named by Message-ID, so sending it again overwrites it."""
        stem = (
            re.sub(r"[^A-Za-z0-9._-]+", "_", str(message["Message-ID"]).strip("<> ")) or "message"
        )
        return self.directory / f"{stem}.eml"

    async def send(self, message: EmailMessage) -> None:
        """Write the message atomically: a reader never sees half a file."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path_for(message)
            with tempfile.NamedTemporaryFile("wb", dir=self.directory, delete=False) as handle:
                handle.write(message.as_bytes())
            os.replace(handle.name, target)
        except OSError as exc:
            raise TemporaryDeliveryError(f"mail: cannot write to {self.directory}: {exc}") from None


class RateLimiter:
    """Spaces messages evenly so that at most ``per_minute`` start in any minute (0: no limit).

    ``clock`` and ``sleep`` are injectable so tests can check the spacing without waiting.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next_at: float | None = None

    async def wait(self) -> None:
        """Return when the next message may go: at once, or one interval after the last."""
        if not self.interval:
            return
        now = self.clock()
        if self._next_at is not None and now < self._next_at:
            await self.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self.interval


class SmtpTransport:
    """Send through one SMTP connection, opened on the first message and reused after.

    Every attempt, refused or not, counts against ``mail.rate_limit_per_minute``: a server that
    limits us counts what we try, not what it accepts.
    """

    name = "smtp"

    def __init__(self, settings: MailSettings, *, limiter: RateLimiter | None = None) -> None:
        self.settings = settings
        self.limiter = (
            limiter if limiter is not None else RateLimiter(settings.rate_limit_per_minute)
        )
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host or "localhost",
            port=s.smtp_port,
            timeout=s.smtp_timeout.total_seconds(),
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            tls_context=_tls_context(s) if s.smtp_security != "none" else None,
        )
        await client.connect()
        if s.smtp_username:
            await client.login(s.smtp_username, s.smtp_password)
        return client

    async def _open(self, where: str) -> aiosmtplib.SMTP:
        try:
            return await self._connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            reason = f"{exc.code} {exc.message}"
            raise TransportUnavailableError(f"mail: {where} refused the login: {reason}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise TransportUnavailableError(f"mail: cannot reach {where}: {reason}") from None

    async def send(self, message: EmailMessage) -> None:
        """Send ``message``; 4xx answers and network trouble are temporary, 5xx permanent."""
        where = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
        await self.limiter.wait()
        if self._client is None or not self._client.is_connected:
            self._client = await self._open(where)
        try:
            await self._client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
            error = _by_code(min(r.code for r in refusals), f"mail: {where} refused {reason}")
            raise error from None
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            raise _by_code(exc.code, f"mail: {where} answered {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise TemporaryDeliveryError(f"mail: {where}: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        """Say QUIT if we can; a dead connection is simply dropped."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    """Certificate and host name checked, against the system's CAs and ``smtp_ca_file``."""
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise TransportUnavailableError(
            f"mail: cannot read mail.smtp_ca_file {cafile}: {exc}"
        ) from None


def _by_code(code: int, message: str) -> TemporaryDeliveryError | PermanentDeliveryError:
    return PermanentDeliveryError(message) if code >= 500 else TemporaryDeliveryError(message)


@asynccontextmanager
async def open_transport(settings: MailSettings) -> AsyncIterator[Transport]:
    """The configured transport, closed after the batch."""
    if not settings.uses_smtp():
        yield FileTransport(settings.outbox_dir)
        return
    transport = SmtpTransport(settings)
    try:
        yield transport
    finally:
        await transport.close()


def retry_at(now: datetime, attempts: int, settings: MailSettings) -> datetime:
    """When to try a temporarily failed delivery again: doubling delays, capped."""
    delay: timedelta = settings.retry_backoff * (2 ** min(max(attempts - 1, 0), 16))
    return now + min(delay, settings.max_retry_backoff)
