"""The address guard: which addresses are refused, and that it checks the address connected to."""

from __future__ import annotations

import asyncio
import ipaddress
import re

import pytest

from monitor.errors import FetchError
from monitor.settings import FetchSettings
from monitor.sources.fetch import FetchedFeed, build_client, fetch_feed
from monitor.sources.guard import AddressPolicy, AddressRefusedError, refusal_reason
from tests.utils.feedserver import FeedServer

BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("64:ff9b::7f00:1", "embedding 127.0.0.1"),
        ("2002:a00:1::", "embedding 10.0.0.1"),
        ("192.0.2.1", "private"),  # documentation range: Python counts it private
    ],
)
def test_default_policy_refuses(address: str, reason: str) -> None:
    found = refusal_reason(ipaddress.ip_address(address))

    assert reason in (found or "")


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700::6810:84e5"])
def test_default_policy_allows_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None
    AddressPolicy().check("example.com", address)


@pytest.mark.parametrize(
    ("allow", "address", "allowed"),
    [
        (["127.0.0.0/8"], "127.0.0.1", True),
        (["127.0.0.1/32"], "127.0.0.2", False),
        (["10.1.0.0/16"], "10.1.2.3", True),
        (["10.1.0.0/16"], "10.2.0.1", False),
        # An IPv4 allow-list does not open the same host written as IPv4-mapped IPv6.
        (["127.0.0.0/8"], "::ffff:127.0.0.1", False),
        (["::1/128"], "::1", True),
        (["::1/128"], "127.0.0.1", False),
    ],
)
def test_allow_list_opens_chosen_networks(allow: list[str], address: str, allowed: bool) -> None:
    policy = AddressPolicy.from_strings(allow)

    if allowed:
        policy.check("host.example", address)
    else:
        with pytest.raises(AddressRefusedError, match="refused"):
            policy.check("host.example", address)


def test_bad_allow_list_entry_is_a_setting_error() -> None:
    with pytest.raises(ValueError, match="not a network"):
        FetchSettings(allow_networks=["10.0.0.0/33"])


def fetch_via(
    url: str, answers: dict[str, list[str]], *, allow: list[str] | None = None
) -> FetchedFeed:
    """Fetch ``url`` with a resolver that answers from ``answers`` instead of DNS."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[host]

    async def run() -> FetchedFeed:
        settings = FetchSettings(allow_networks=allow or [])
        async with build_client(settings, resolver=resolver) as client:
            return await fetch_feed(client, url, max_bytes=10_000, deadline=10)

    try:
        return asyncio.run(run())
    finally:
        assert set(asked) <= set(answers), "only the hosts of the test were resolved"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
    ],
)
def test_dns_answer_to_a_refused_address_is_not_connected(
    feed_server: FeedServer, answer: str, reason: str
) -> None:
    feed_server.add("/feed.xml", BODY)

    with pytest.raises(FetchError, match=f"feeds.example \\(resolved to {answer}\\).*{reason}"):
        fetch_via(f"http://feeds.example:{feed_server.port}/feed.xml", {"feeds.example": [answer]})

    assert feed_server.hits["/feed.xml"] == 0


def test_one_refused_answer_among_public_ones_refuses_the_name(feed_server: FeedServer) -> None:
    # Checking only the first answer would let a rebinding resolver slip 127.0.0.1 in second.
    with pytest.raises(FetchError, match=re.escape("resolved to 127.0.0.1")):
        fetch_via(
            f"http://mixed.example:{feed_server.port}/feed.xml",
            {"mixed.example": ["93.184.215.14", "127.0.0.1"]},
        )


def test_allowed_answer_is_the_address_connected_to(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", BODY)

    fetched = fetch_via(
        f"http://feeds.example:{feed_server.port}/feed.xml",
        {"feeds.example": ["127.0.0.1"]},
        allow=["127.0.0.0/8"],
    )

    assert fetched.body == BODY
    [(_, headers)] = feed_server.requests
    assert headers["host"] == f"feeds.example:{feed_server.port}"


def test_default_settings_refuse_the_local_feed_server(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", BODY)

    with pytest.raises(
        FetchError, match=re.escape("connection to 127.0.0.1 refused: a loopback address")
    ):
        fetch_via(url, {})

    assert feed_server.hits["/feed.xml"] == 0
