"""Admitting a feed URL: the checks every way of adding a feed makes (the CLI, config/feeds.opml,
OPML imports, the web form and the API), so one refused anywhere is refused everywhere.

A URL must be absolute http(s), short enough to index, and its host must not be one the fetch
guard refuses (loopback, private, link-local such as 169.254.169.254, ...), unless
``fetch.allow_networks`` opens its network. A name that does not resolve at that moment is let
through: the fetch checks every connection anyway, so this check only turns a certain refusal
into a message at once.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import httpx

from monitor.errors import UsageError
from monitor.sources.feeds import check_feed_url
from monitor.sources.guard import AddressPolicy, AddressRefusedError

MAX_URL_BYTES = 2000
# host -> the addresses it resolves to (injectable, so tests need no DNS).
HostResolver = Callable[[str], list[str]]


def system_addresses(host: str) -> list[str]:
    """The addresses the system resolver gives for ``host`` (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_address(url: str, policy: AddressPolicy, resolve: HostResolver) -> str | None:
    """Why the address guard would refuse ``url``'s host now (None: allowed or unknown yet)."""
    return refused_host(httpx.URL(url).host, policy, resolve)


def refused_host(host: str, policy: AddressPolicy, resolve: HostResolver) -> str | None:
    """Why the address guard would refuse ``host`` (a name or an IP literal) now, or None."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = resolve(host)
    for address in addresses:
        try:
            policy.check(host, address)
        except AddressRefusedError as exc:
            return exc.reason
    return None


def admit_feed_url(
    url: str, policy: AddressPolicy, resolve: HostResolver = system_addresses
) -> str:
    """``url`` checked (stripped) as a feed to add; UsageError saying why it is refused."""
    try:
        checked = check_feed_url(url)
    except ValueError:  # IDNA and other host encodings httpx refuses
        raise UsageError(f"not a valid feed URL: {url.strip()!r}") from None
    if len(checked.encode()) > MAX_URL_BYTES:
        raise UsageError(f"feed URL too long: over {MAX_URL_BYTES} bytes")
    reason = refused_address(checked, policy, resolve)
    if reason is not None:
        raise UsageError(f"feed URL refused: {checked}: {reason}")
    return checked
