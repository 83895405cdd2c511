"""Apprise channels (Slack, Teams, Telegram, Matrix, ntfy, Discord, json://, ...), sent with
the address guard in force.

Apprise reaches its services with ``requests``, whose connections urllib3 opens through one
function, ``urllib3.util.connection.create_connection``. monitor wraps it once: inside an
Apprise call (a context variable says so, so no other connection of the process is touched)
the wrapper resolves the name itself, checks every address against the guard's policy
(``channels.allow_networks`` opens networks), connects only to a checked one and checks the
peer again, on every connection, redirects included. TLS still verifies the service's name.
The call has a deadline: when it passes, the call's sockets are shut down, so a service that
drips its answer cannot hold a sender.

Apprise reports only success or failure; the HTTP status in its failure message decides what
comes next (410: the channel is disabled; 408, 425, 429, 5xx and connection trouble: retried;
another 4xx: failed), and its messages are redacted of the URL's secrets before they are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3.util.connection
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from monitor.delivery.channels.compose import ChatMessage
from monitor.delivery.channels.targets import CUSTOM_HOST_SCHEMES, _apprise, redact
from monitor.errors import ChannelGoneError, PermanentDeliveryError, TemporaryDeliveryError
from monitor.sources.guard import AddressPolicy, AddressRefusedError

log = logging.getLogger(__name__)
# host, port -> (address, port) pairs to connect to (injectable, so tests need no DNS).
SyncResolver = Callable[[str, int], list[tuple[str, int]]]
_STATUS = re.compile(r"error=(\d{3})\b")
_TEMPORARY = frozenset({408, 425, 429})
# Apprise logs service URLs (tokens in them) and payloads: none of that reaches monitor's log.
# What a call said comes back in its result instead, and is redacted before it is kept.
_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.setLevel(logging.WARNING)
_APPRISE_LOG.propagate = False


def system_pairs(host: str, port: int) -> list[tuple[str, int]]:
    """The addresses the system resolver gives for ``host``, with ``port``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys((str(info[4][0]), int(info[4][1])) for info in infos))


@dataclass
class _Call:
    """One guarded Apprise call: its policy, the sockets it opened, what it refused."""

    policy: AddressPolicy
    resolve: SyncResolver
    sockets: list[socket.socket] = field(default_factory=list)
    refused: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    aborted: bool = False

    def connect(
        self,
        original: Callable[..., socket.socket],
        address: tuple[str, int],
        timeout: Any,
        source_address: Any,
        socket_options: Any,
    ) -> socket.socket:
        """Connect as urllib3 would, to a checked address only."""
        host, port = address
        host = host.strip("[]")
        try:
            pairs = self.resolve(host, port)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        try:
            for ip, _ in pairs:
                self.policy.check(host, ip)
        except AddressRefusedError as exc:
            self.refused = exc.reason
            raise OSError(exc.reason) from None
        error: OSError | None = None
        for ip, ip_port in pairs:
            if self.aborted:
                break
            try:
                sock = original((ip, ip_port), timeout, source_address, socket_options)
            except OSError as exc:
                error = exc
                continue
            self._track(sock)
            return sock
        raise error or OSError(f"cannot connect to {host}")

    def _track(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor: TLS wrapping detaches the original socket object,
        # but shutting down either one ends the connection for both.
        with self.lock:
            self.sockets.append(sock.dup())

    def abort(self) -> None:
        """End every connection of the call now: the thread blocked on one returns."""
        with self.lock:
            self.aborted = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the duplicates (the connections themselves belong to urllib3)."""
        with self.lock:
            for sock in self.sockets:
                sock.close()
            self.sockets.clear()


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "monitor_apprise_call", default=None
)
_INSTALLED = threading.Lock()
_original: Callable[..., socket.socket] | None = None


def install_guard() -> None:
    """Route urllib3's connections through the guard while an Apprise call runs (once)."""
    global _original
    with _INSTALLED:
        if _original is not None:
            return
        original = urllib3.util.connection.create_connection
        _original = original

        def guarded(
            address: tuple[str, int],
            timeout: Any = _DEFAULT_TIMEOUT,
            source_address: Any = None,
            socket_options: Any = None,
        ) -> socket.socket:
            call = _CURRENT.get()
            if call is None:
                return original(address, timeout, source_address, socket_options)
            return call.connect(original, address, timeout, source_address, socket_options)

        urllib3.util.connection.create_connection = guarded


def native_format(plugin: Any) -> str:
    """The chat format to render for a service: HTML where it is the service's own first
    (Telegram), else Markdown where it takes it (Slack, Discord, Matrix, Teams), else text."""
    formats = plugin.notify_format
    names = [str(getattr(f, "value", f)) for f in (formats if isinstance(formats, tuple | list)
                                                   else (formats,))]  # fmt: skip
    if names and names[0] == "html":
        return "html"
    return "markdown" if "markdown" in names else "text"


def body_limit(plugin: Any) -> int:
    """The longest body the service takes in one message."""
    return int(getattr(plugin, "body_maxlen", 0) or 32768)


def with_idempotency_key(url: str, key: str) -> str:
    """A json/form/xml URL sending the key as a header and in the payload; others as they
    are (chat services have nowhere to put it)."""
    if urlsplit(url).scheme.lower() not in CUSTOM_HOST_SCHEMES:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}+Idempotency-Key={key}&:idempotency_key={key}"


@dataclass(frozen=True, slots=True)
class AppriseOutcome:
    """What Apprise said about one call."""

    ok: bool
    messages: tuple[str, ...]
    refused: str | None


def _notify(url: str, message: ChatMessage, call: _Call, shown_url: str) -> AppriseOutcome:
    """Send ``message`` through Apprise in this thread, with ``call`` guarding connections."""
    apprise = _apprise()
    install_guard()
    asset = apprise.AppriseAsset(async_mode=False)
    plugin = apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)
    if plugin is None:
        raise PermanentDeliveryError(f"channel {shown_url}: Apprise cannot read this URL")
    sender = apprise.Apprise(asset=asset)
    sender.add(plugin)
    token = _CURRENT.set(call)
    try:
        result = sender.notify(
            body=message.body,
            # Markdown and HTML messages carry their title in the body, escaped by us.
            title=message.title if message.format == "text" else "",
            body_format=message.format,
        )
    finally:
        _CURRENT.reset(token)
    lines = tuple(str(getattr(entry, "message", entry)) for entry in result.logs())
    return AppriseOutcome(bool(result), lines, call.refused)


async def send_apprise(
    url: str,
    message: ChatMessage,
    *,
    key: str,
    shown_url: str,
    policy: AddressPolicy,
    deadline: float,
    resolve: SyncResolver = system_pairs,
) -> None:
    """Send a chat message to an Apprise URL within ``deadline`` seconds; a DeliveryError
    saying why when it does not go."""
    call = _Call(policy, resolve)
    target = with_idempotency_key(url, key)
    context = contextvars.copy_context()
    work = asyncio.get_running_loop().run_in_executor(
        None, context.run, _notify, target, message, call, shown_url
    )
    try:
        outcome = await asyncio.wait_for(asyncio.shield(work), deadline)
    except TimeoutError:
        call.abort()
        await asyncio.wait({work}, timeout=5)
        raise TemporaryDeliveryError(
            f"channel {shown_url}: no complete answer within {deadline:g} s"
        ) from None
    finally:
        if work.done():
            call.close()
    if not outcome.ok:
        raise _failure(outcome, shown_url, url)


def _failure(outcome: AppriseOutcome, shown_url: str, url: str) -> Exception:
    """The DeliveryError that Apprise's failure amounts to."""
    if outcome.refused is not None:
        return PermanentDeliveryError(f"channel {shown_url}: {outcome.refused}")
    said = redact("; ".join(outcome.messages) or "Apprise could not send", url)
    said = f"channel {shown_url}: {said}"
    found = [int(code) for code in _STATUS.findall(said)]
    status = found[-1] if found else None
    if status == 410:
        return ChannelGoneError(said + " (the channel is disabled)")
    if status is None or status in _TEMPORARY or status >= 500:
        return TemporaryDeliveryError(said)
    return PermanentDeliveryError(said)
