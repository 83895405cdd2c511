"""The address guard: which IP addresses a feed fetch may connect to.

A feed URL is anybody's input, so a fetch must not become a way into the machine's own network
(SSRF): loopback, private ranges, cloud metadata at 169.254.169.254, and so on. Names are
checked where it counts, on the IP actually connected to, inside the HTTP client's network
backend: every connection (the first request and every redirect hop) passes through it, and a
DNS answer that changes between two look-ups (DNS rebinding) changes nothing, because the
address checked is the address used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the name resolves to (injectable, so tests can fake DNS).
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefusedError(Exception):
    """A connection the address policy does not allow."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (or single addresses) as networks; raise ValueError on a bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # An IPv6 address that carries an IPv4 one reaches that IPv4 host (mapped, 6to4, NAT64).
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why the default policy refuses ``ip`` (None when it is an ordinary public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        inner = _embedded_ipv4(ip)
        if inner is not None and refusal_reason(inner) is not None:
            return f"an IPv6 address embedding {inner}, which is refused"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives there)"),
        (ip.version == 4 and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses only, except the networks of ``allow`` (tests, intranet feeds)."""

    allow: tuple[IPNetwork, ...] = ()
    # The setting that opens networks, named in refusals.
    setting: str = "fetch.allow_networks"

    @classmethod
    def from_strings(
        cls, allow: Iterable[str], *, setting: str = "fetch.allow_networks"
    ) -> AddressPolicy:
        """A policy allowing these CIDR networks besides the public Internet."""
        return cls(parse_networks(allow), setting)

    def check(self, host: str, address: str) -> None:
        """Raise AddressRefusedError unless connecting to ``address`` (for ``host``) is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip.version == net.version and ip in net for net in self.allow):
            return
        reason = refusal_reason(ip)
        if reason is not None:
            shown = address if _literal(host) else f"{host} (resolved to {address})"
            raise AddressRefusedError(
                host, f"connection to {shown} refused: {reason} (see {self.setting})"
            )


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves names itself and connects only to allowed addresses."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, refuse if any answer is disallowed, connect to an allowed one."""
        literal = _literal(host)
        try:
            addresses = [literal] if literal else await self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        # Every answer is checked, not only the first: a mix of public and private answers is
        # how DNS rebinding would slip a private address in on a later connection.
        for address in addresses:
            self.policy.check(host, address)
        return await self._connect_first(
            host, addresses, port, timeout, local_address, socket_options
        )

    async def _connect_first(
        self,
        host: str,
        addresses: Sequence[str],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in addresses:
            try:
                stream = await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            try:
                if peer:
                    # Belt and braces: check the peer the socket really reached.
                    self.policy.check(host, str(peer[0]))
            except AddressRefusedError:
                await stream.aclose()
                raise
            return stream
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a feed's address."""
        raise AddressRefusedError(path, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does."""
        await self.inner.sleep(seconds)
