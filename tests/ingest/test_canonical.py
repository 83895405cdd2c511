"""Canonical URLs and article keys: what makes two items the same article."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.ingest.canonical import (
    InvalidURLError,
    article_key,
    article_keys,
    canonical_url,
    canonical_url_or_none,
    fingerprint,
)
from monitor.sources.parse import ParsedEntry, parse_feed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case; path case is kept
        ("HTTPS://Example.COM/Path/Page", "https://example.com/Path/Page"),
        ("Http://NEWS.example.com/a", "http://news.example.com/a"),
        # default ports go, other ports stay
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        # fragments, user info, an empty query, the root path, a trailing dot on the host
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com./a", "https://example.com/a"),
        ("  https://example.com/a \n", "https://example.com/a"),
        # tracking parameters go
        ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x&id=5", "https://example.com/a?id=5"),
        ("https://example.com/a?fbclid=IwAR0&gclid=1&msclkid=2", "https://example.com/a"),
        ("https://example.com/a?id=5&mc_cid=1&mc_eid=2&_ga=3", "https://example.com/a?id=5"),
        ("https://example.com/a?pk_campaign=1&mtm_source=2&at_medium=3", "https://example.com/a"),
        ("https://example.com/a?smid=tw-share&ocid=rss&cmpid=x", "https://example.com/a"),
        # remaining parameters are sorted (by key, then value); repeats and blanks are kept
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?tag=z&tag=a", "https://example.com/a?tag=a&tag=z"),
        ("https://example.com/a?page=2&utm_source=x&id=7", "https://example.com/a?id=7&page=2"),
        ("https://example.com/a?x=", "https://example.com/a?x="),
        ("https://example.com/a?ref=home", "https://example.com/a?ref=home"),
        # percent-encoding: unreserved characters decoded, escapes upper-cased, raw text encoded
        ("https://example.com/%7Euser/%41bc", "https://example.com/~user/Abc"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
        ("https://example.com/100%25", "https://example.com/100%25"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ("https://example.com/s?q=caf%c3%a9", "https://example.com/s?q=caf%C3%A9"),
        ("https://example.com/s?q=a%20b", "https://example.com/s?q=a+b"),
        ("https://example.com/s?q=%2B1", "https://example.com/s?q=%2B1"),
        ("https://example.com/a;v=1", "https://example.com/a;v=1"),
        # IPv6 literals keep their brackets
        ("http://[::1]:8080/feed", "http://[::1]:8080/feed"),
        ("https://[2001:DB8::0001]/a", "https://[2001:db8::1]/a"),
        # more tracking parameters, in any case, beside real ones
        ("https://example.com/a?utm_content=x&utm_term=y&utm_id=z", "https://example.com/a"),
        ("https://example.com/a?CMP=share_btn_tw", "https://example.com/a"),
        ("https://example.com/a?OCID=msedgntp&p=3", "https://example.com/a?p=3"),
        ("https://example.com/a?igshid=1&yclid=2&dclid=3", "https://example.com/a"),
        ("https://example.com/a?ito=1&mbid=2&smtyp=3", "https://example.com/a"),
        ("https://example.com/a?ref_src=twsrc&s=20", "https://example.com/a?s=20"),
        ("https://example.com/a?utm_source=x#section-2", "https://example.com/a"),
        ("https://example.com/watch?v=abc&t=10", "https://example.com/watch?t=10&v=abc"),
        ("https://example.com/a?id=5&ID=6", "https://example.com/a?ID=6&id=5"),
        # internationalised hosts: their IDNA form, whichever way they are written
        ("https://Bücher.example/katalog", "https://xn--bcher-kva.example/katalog"),
        ("https://xn--bcher-kva.example/katalog", "https://xn--bcher-kva.example/katalog"),
        ("https://XN--BCHER-KVA.example/katalog", "https://xn--bcher-kva.example/katalog"),
        (
            "https://пример.рф/новости",
            "https://xn--e1afmkfd.xn--p1ai/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8",
        ),
        ("https://ÉLYSÉE.fr/a", "https://xn--lyse-9oad.fr/a"),
        ("https://例え.テスト/記事", "https://xn--r8jz45g.xn--zckzah/%E8%A8%98%E4%BA%8B"),
        # paths: case, dots and slashes kept as given
        (
            "https://example.com/News/2024/09/Story.HTML",
            "https://example.com/News/2024/09/Story.HTML",
        ),
        ("https://example.com/a/", "https://example.com/a/"),
        ("https://example.com/a//b", "https://example.com/a//b"),
        ("https://example.com/%E2%82%AC", "https://example.com/%E2%82%AC"),
        ("https://example.com/€", "https://example.com/%E2%82%AC"),
        ("https://example.com/%5bx%5d", "https://example.com/%5Bx%5D"),
        # ports spelt oddly, and hosts in upper case with ports
        ("HTTP://EXAMPLE.COM:80", "http://example.com/"),
        ("https://EXAMPLE.com:0443/a", "https://example.com/a"),
        ("http://127.0.0.1:8000/feed.xml", "http://127.0.0.1:8000/feed.xml"),
        # feedburner-style proxy links keep their own identity (parse prefers origLink)
        (
            "http://feeds.feedburner.com/~r/Example/~3/AbC123/story.html?utm_medium=feed",
            "http://feeds.feedburner.com/~r/Example/~3/AbC123/story.html",
        ),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "not an absolute http"),
        ("not a url", "not an absolute http"),
        ("/news/a", "not an absolute http"),
        ("news/a", "not an absolute http"),
        ("example.com/a", "not an absolute http"),
        ("//example.com/a", "not an absolute http"),
        ("ftp://example.com/a", "not an absolute http"),
        ("mailto:desk@example.com", "not an absolute http"),
        ("javascript:alert(1)", "not an absolute http"),
        ("https://", "no valid host"),
        ("https:///a", "no valid host"),
        ("https://example.com:99999/a", "malformed URL"),
        ("https://example.com:port/a", "malformed URL"),
        ("https://[::1/a", "malformed URL"),
        ("https://exa mple.com/a", "no valid host"),
        ("https://exa<mple.com/a", "no valid host"),
    ],
)
def test_invalid_urls_raise_a_clear_error(url: str, reason: str) -> None:
    with pytest.raises(InvalidURLError, match=f"^canonical: {reason}"):
        canonical_url(url)
    assert canonical_url_or_none(url) is None


@pytest.mark.parametrize(
    ("url", "tracking", "expected"),
    [
        ("https://example.com/a?src=rss&id=1", {"src"}, "https://example.com/a?id=1"),
        ("https://example.com/a?SRC=rss", {"src"}, "https://example.com/a"),
        ("https://example.com/a?src=rss", set(), "https://example.com/a?src=rss"),
    ],
)
def test_tracking_parameters_are_configurable(url: str, tracking: set[str], expected: str) -> None:
    assert canonical_url(url, tracking=frozenset(tracking)) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://example.com/a/b", "https://example.com/a%2Fb"),
        ("https://example.com/Story", "https://example.com/story"),
        ("https://example.com/a?id=1", "https://example.com/a?id=2"),
        ("http://example.com/a", "https://example.com/a"),
    ],
)
def test_different_resources_stay_different(first: str, second: str) -> None:
    assert canonical_url(first) != canonical_url(second)


_URL_TEXT = st.text(
    alphabet=st.sampled_from("aZ09-._~%/?#&=+;:@!$'()* é€ABCDEFabcdef"), max_size=40
)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,20}", fullmatch=True),
    port=st.one_of(st.none(), st.integers(min_value=0, max_value=70_000)),
    rest=_URL_TEXT,
)
def test_canonical_url_is_idempotent(scheme: str, host: str, port: int | None, rest: str) -> None:
    url = f"{scheme}://{host}{'' if port is None else f':{port}'}/{rest}"
    once = canonical_url_or_none(url)

    assert once is None or canonical_url(once) == once


@given(st.text(max_size=80))
def test_canonical_url_of_any_text_is_idempotent(text: str) -> None:
    once = canonical_url_or_none("https://" + text)

    assert once is None or canonical_url(once) == once


def entry(**fields: object) -> ParsedEntry:
    """A parsed entry with defaults for what a test does not care about."""
    base = ParsedEntry(
        guid=None,
        link=None,
        title="Central bank holds rates",
        summary="The central bank kept its rate unchanged.",
        content="",
        author="",
        published_at=None,
        updated_at=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_url_key_ignores_tracking_parameters_and_feed() -> None:
    plain = article_key(entry(link="https://news.example.com/a?id=1"), feed_id=1)
    tracked = article_key(
        entry(link="https://NEWS.example.com/a?utm_source=rss&id=1#top", guid="x"), feed_id=2
    )

    assert plain.key_hash == tracked.key_hash
    assert plain.canonical_url == "https://news.example.com/a?id=1"


def test_url_key_ignores_title_and_text_changes() -> None:
    first = article_key(entry(link="https://n.example/a"), feed_id=1)
    edited = article_key(entry(link="https://n.example/a", title="Updated headline"), feed_id=1)

    assert first.key_hash == edited.key_hash
    assert first.content_hash != edited.content_hash


def test_guid_key_is_scoped_per_feed() -> None:
    one = article_key(entry(guid="42"), feed_id=1)
    other = article_key(entry(guid="42"), feed_id=2)
    same = article_key(entry(guid="42", title="Something else"), feed_id=1)

    assert one.key_hash != other.key_hash
    assert one.key_hash == same.key_hash
    assert one.canonical_url is None


@pytest.mark.parametrize("link", ["/relative/path", "ftp://example.com/a", "not a url"])
def test_unusable_link_falls_back_to_the_guid(link: str) -> None:
    assert (
        article_key(entry(link=link, guid="g-1"), feed_id=3).key_hash
        == article_key(entry(guid="g-1"), feed_id=3).key_hash
    )


def test_no_link_no_guid_keys_by_content_stably() -> None:
    first = article_key(entry(), feed_id=1)
    again = article_key(entry(), feed_id=1)
    elsewhere = article_key(entry(), feed_id=2)
    different = article_key(entry(title="Another story"), feed_id=1)

    assert first == again
    assert first.key_hash == elsewhere.key_hash
    assert first.key_hash != different.key_hash
    assert first.canonical_url is None


def test_content_key_prefers_content_over_summary() -> None:
    with_content = entry(content="Full text of the story.")

    assert (
        article_key(with_content, feed_id=1).key_hash
        == article_key(replace(with_content, summary="a different teaser"), feed_id=1).key_hash
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("Central Bank holds rates",), ("central bank HOLDS rates",)),
        (("Café déjà vu",), ("Cafe deja vu",)),
        (("Rates: held!", "—and why?"), ("rates held", "and why")),
        (("  spaced\tout\n",), ("spaced out",)),
        (("Straße",), ("STRASSE",)),
    ],
)
def test_fingerprint_ignores_case_accents_and_punctuation(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    assert fingerprint(*first) == fingerprint(*second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("rates held",), ("rates cut",)),
        (("rates held",), ("held rates",)),
        (("ab", "c"), ("a", "bc")),
    ],
)
def test_fingerprint_tells_different_words_apart(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    assert fingerprint(*first) != fingerprint(*second)


def test_entries_told_apart_only_by_fragment_keep_distinct_keys() -> None:
    page = "https://blog.example.org/post/comment-page-1/"
    entries = [
        entry(link=f"{page}#comment-1", guid="c1"),
        entry(link=f"{page}#comment-2", guid="c2"),
        entry(link=f"{page}?utm_source=rss#comment-2", guid="c2-again"),
    ]

    keys = article_keys(entries, feed_id=1)

    assert keys[0].key_hash != keys[1].key_hash
    assert keys[1].key_hash == keys[2].key_hash  # same fragment: the same item, once
    assert {key.canonical_url for key in keys} == {page}


def test_a_lone_fragment_is_dropped_as_usual() -> None:
    with_fragment = entry(link="https://news.example.com/a#top")
    plain = entry(link="https://news.example.com/a")

    assert article_keys([with_fragment], feed_id=1) == article_keys([plain], feed_id=1)
    assert article_keys([with_fragment, plain], feed_id=1)[1] == article_key(plain, feed_id=1)


def test_one_fragment_beside_the_plain_url_is_the_same_article() -> None:
    keys = article_keys(
        [
            entry(link="https://news.example.com/a"),
            entry(link="https://news.example.com/a#comments"),
        ],
        feed_id=1,
    )
    assert keys[0] == keys[1]


ORIGINAL_LINKS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"
     xmlns:pheedo="http://www.pheedo.com/namespace/pheedo">
<channel><title>Proxied</title>
<item><title>A</title><link>http://feeds.feedburner.com/~r/x/~3/abc/</link>
  <feedburner:origLink>https://Example.com/a?utm_source=feedburner</feedburner:origLink></item>
<item><title>B</title><link>http://x.pheedo.com/click/1</link>
  <pheedo:origLink>https://example.com/b#top</pheedo:origLink></item>
<item><title>C</title><link>https://example.com/c</link>
  <feedburner:origLink>not a link</feedburner:origLink></item>
</channel></rss>"""


@pytest.mark.parametrize(
    ("index", "expected"),
    [(0, "https://example.com/a"), (1, "https://example.com/b"), (2, "https://example.com/c")],
)
def test_original_link_fields_name_the_article(index: int, expected: str) -> None:
    entries = parse_feed(ORIGINAL_LINKS, url="https://feeds.example/proxied").entries

    assert article_key(entries[index], feed_id=1).canonical_url == expected
