"""parse_feed over small inline documents: formats, plain text, dates, links, broken input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from monitor.errors import ParseError
from monitor.sources.parse import (
    ParsedEntry,
    ParsedFeed,
    html_to_text,
    parse_feed,
    sanitize_html,
)
from monitor.sources.sanitize import element_text

FEED_URL = "https://news.example.com/feeds/world.xml"

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
  <title>World &amp; More</title><link>https://news.example.com/</link><language>de</language>
  <item><title>First story</title><link>https://news.example.com/a/1</link>
    <guid>https://news.example.com/a/1</guid><description>Body one</description></item>
  <item><title>Second story</title><link>https://news.example.com/a/2</link></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
  <title>Atom World</title><id>urn:feed</id><updated>2024-09-10T10:00:00Z</updated>
  <link rel="alternate" href="https://news.example.com/"/>
  <entry><id>urn:uuid:1</id><title>First story</title><updated>2024-09-10T10:00:00Z</updated>
    <link href="https://news.example.com/a/1"/><author><name>Ann Author</name></author></entry>
</feed>"""

RDF = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://news.example.com/">
    <title>RDF World</title><link>https://news.example.com/</link><description>d</description>
  </channel>
  <item rdf:about="https://news.example.com/a/1">
    <title>First story</title><link>https://news.example.com/a/1</link>
  </item>
</rdf:RDF>"""


def rss_with_item(item: str, *, channel: str = "") -> bytes:
    """An RSS 2.0 document with one ``<item>`` whose inner XML is ``item``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>T</title>{channel}<item>{item}</item></channel></rss>"
    ).encode()


def atom_with_entry(entry: str) -> bytes:
    """An Atom document with one ``<entry>`` whose inner XML is ``entry``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>T</title><id>urn:feed</id><entry><id>urn:e</id>{entry}</entry></feed>"
    ).encode()


def only_entry(body: bytes) -> ParsedEntry:
    """The single entry of a document that must parse cleanly."""
    parsed = parse_feed(body, url=FEED_URL, content_type="application/xml")
    assert len(parsed.entries) == 1
    return parsed.entries[0]


@pytest.mark.parametrize(
    ("body", "version", "title", "site_url", "language", "entry_count"),
    [
        pytest.param(RSS, "rss20", "World & More", "https://news.example.com/", "de", 2, id="rss"),
        pytest.param(ATOM, "atom10", "Atom World", "https://news.example.com/", "fr", 1, id="atom"),
        pytest.param(RDF, "rss10", "RDF World", "https://news.example.com/", "", 1, id="rdf"),
    ],
)
def test_formats_are_detected_with_their_metadata(
    body: bytes, version: str, title: str, site_url: str, language: str, entry_count: int
) -> None:
    parsed = parse_feed(body, url=FEED_URL, content_type="application/xml")

    assert (parsed.version, parsed.title, parsed.site_url) == (version, title, site_url)
    assert parsed.language == language
    assert len(parsed.entries) == entry_count
    assert parsed.warning is None


@pytest.mark.parametrize("body", [RSS, ATOM, RDF], ids=["rss", "atom", "rdf"])
def test_first_entry_has_title_and_link(body: bytes) -> None:
    entry = parse_feed(body, url=FEED_URL).entries[0]

    assert entry.title == "First story"
    assert entry.link == "https://news.example.com/a/1"


def test_atom_author_and_rss_language_reach_the_entry() -> None:
    assert parse_feed(ATOM, url=FEED_URL).entries[0].author == "Ann Author"
    assert parse_feed(RSS, url=FEED_URL).entries[0].language == "de"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        pytest.param(
            rss_with_item("<title>A &lt;b&gt;bold&lt;/b&gt; move</title>"),
            "title",
            "A bold move",
            id="rss-title-tags",
        ),
        pytest.param(
            rss_with_item("<title>Caf&amp;eacute; &amp;#8217;s &amp;amp; bar</title>"),
            "title",
            "Café ’s & bar",
            id="rss-title-entities",
        ),
        pytest.param(
            rss_with_item(
                "<description>&lt;p&gt;One&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
                "&lt;p&gt;Two &amp;amp; three&lt;/p&gt;</description>"
            ),
            "summary",
            "One\n\nTwo & three",
            id="rss-summary-script-dropped",
        ),
        pytest.param(
            rss_with_item(
                "<content:encoded><![CDATA[<style>p {color: red}</style><h2>Head</h2>"
                "<p>Para&nbsp;one.</p><ul><li>a</li><li>b</li></ul>]]></content:encoded>"
            ),
            "content",
            "Head\n\nPara one.\n\na\n\nb",
            id="rss-content-style-dropped",
        ),
        pytest.param(
            rss_with_item(
                "<content:encoded><![CDATA[<p>Only <em>content</em></p>]]></content:encoded>"
            ),
            "summary",
            "Only content",
            id="rss-content-only-summary-is-text",
        ),
        pytest.param(
            atom_with_entry('<title type="html">&lt;em&gt;Hi&lt;/em&gt; &amp;hellip;</title>'),
            "title",
            "Hi …",
            id="atom-html-title",
        ),
        pytest.param(
            atom_with_entry('<summary type="text">1 &lt; 2 &amp;&amp; 3 &gt; 2</summary>'),
            "summary",
            "1 < 2 && 3 > 2",
            id="atom-text-summary-kept-literal",
        ),
        pytest.param(
            atom_with_entry(
                '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
                "<p>A</p><script>bad()</script><p>B &amp; C</p></div></content>"
            ),
            "content",
            "A\n\nB & C",
            id="atom-xhtml-content",
        ),
    ],
)
def test_markup_becomes_plain_text(body: bytes, field: str, expected: str) -> None:
    assert getattr(only_entry(body), field) == expected


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("plain words", "plain words"),
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("x<br>y", "x\ny"),
        ("<script>var a = '<p>';</script>kept", "kept"),
        ("<svg><style>.c{}</style><text>t</text></svg>after", "after"),
        ("a&nbsp;&amp;&nbsp;b", "a & b"),
        ("  lots   of\t\tspace  ", "lots of space"),
        ("<div><p>one</p>\n\n\n<p>two</p></div>", "one\n\ntwo"),
        # A void element has no end: one line break however it is written.
        ("x<br/>y<br />z", "x\ny\nz"),
        ("a<hr>b", "a\nb"),
        ("<title>Kept</title> text", "Kept text"),
        ("a<!-- hidden -->b", "ab"),
        ('<iframe src="https://x.example/e"><a href="/">fallback</a></iframe>after', "after"),
        ("Tom &amp; Jerry &lt;3 &#8217;", "Tom & Jerry <3 ’"),
        ("AT&T", "AT&T"),
        ("<P>Upper</P><SCRIPT>x()</SCRIPT>", "Upper"),
        ("<td>1</td><td>2</td>", "12"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, expected: str) -> None:
    assert html_to_text(markup) == expected


@pytest.mark.parametrize(
    "markup",
    [
        "<p>A</p><script>bad()</script><p>B &amp; C</p>",
        "x<br/>y<ul><li>a</li><li>b <em>c</em></li></ul>tail",
        "<div><svg><text>t</text></svg><h2>H</h2>  spaced   out  </div>",
    ],
)
def test_xhtml_elements_read_like_html(markup: str) -> None:
    element = etree.fromstring(f'<div xmlns="http://www.w3.org/1999/xhtml">{markup}</div>')

    assert element_text(element) == html_to_text(markup)


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Hi <b>there</b></p>", "<p>Hi <b>there</b></p>"),
        ('<p onclick="x()" style="color:red">a</p>', "<p>a</p>"),
        ("<script>alert(1)</script><style>p{}</style>ok", "ok"),
        ('<iframe src="https://evil.example"></iframe>ok', "ok"),
        (
            '<a href="javascript:alert(1)">x</a>',
            '<a rel="noopener noreferrer nofollow">x</a>',
        ),
        (
            '<a href="https://x.example/" target="_blank">x</a>',
            '<a href="https://x.example/" rel="noopener noreferrer nofollow">x</a>',
        ),
        (
            '<img src="https://x.example/i.png" onerror="x()" alt="i">',
            '<img src="https://x.example/i.png" alt="i">',
        ),
        ("<form><input name=q></form>text", "text"),
        ("unclosed <em>emphasis", "unclosed <em>emphasis</em>"),
    ],
)
def test_sanitize_html_keeps_only_the_allow_list(markup: str, expected: str) -> None:
    assert sanitize_html(markup) == expected


@pytest.mark.parametrize(
    ("body", "published", "updated"),
    [
        pytest.param(
            rss_with_item("<pubDate>Tue, 10 Sep 2024 12:00:00 +0200</pubDate>"),
            datetime(2024, 9, 10, 10, 0, tzinfo=UTC),
            None,
            id="rss-plus-two-hours",
        ),
        pytest.param(
            rss_with_item("<pubDate>Tue, 10 Sep 2024 12:00:00 GMT</pubDate>"),
            datetime(2024, 9, 10, 12, 0, tzinfo=UTC),
            None,
            id="rss-gmt",
        ),
        pytest.param(
            rss_with_item("<dc:date>2024-09-10T08:15:00-05:00</dc:date>"),
            datetime(2024, 9, 10, 13, 15, tzinfo=UTC),
            datetime(2024, 9, 10, 13, 15, tzinfo=UTC),
            id="dc-date-minus-five",
        ),
        pytest.param(
            atom_with_entry(
                "<published>2024-09-09T23:30:00-01:00</published>"
                "<updated>2024-09-10T12:00:00+02:00</updated>"
            ),
            datetime(2024, 9, 10, 0, 30, tzinfo=UTC),
            datetime(2024, 9, 10, 10, 0, tzinfo=UTC),
            id="atom-published-crosses-midnight",
        ),
        pytest.param(
            atom_with_entry("<updated>2024-09-10T12:00:00Z</updated>"),
            datetime(2024, 9, 10, 12, 0, tzinfo=UTC),
            datetime(2024, 9, 10, 12, 0, tzinfo=UTC),
            id="atom-updated-stands-in-for-published",
        ),
        pytest.param(rss_with_item("<title>x</title>"), None, None, id="no-date"),
        pytest.param(rss_with_item("<pubDate>yesterday-ish</pubDate>"), None, None, id="garbage"),
    ],
)
def test_dates_are_aware_utc(
    body: bytes, published: datetime | None, updated: datetime | None
) -> None:
    entry = only_entry(body)

    assert entry.published_at == published
    assert entry.updated_at == updated
    for value in (entry.published_at, entry.updated_at):
        assert value is None or value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (rss_with_item("<link>/a/1</link>"), "https://news.example.com/a/1"),
        (rss_with_item("<link>posts/2</link>"), "https://news.example.com/feeds/posts/2"),
        (rss_with_item("<link>../up/3</link>"), "https://news.example.com/up/3"),
        (rss_with_item("<link>https://other.example.org/x</link>"), "https://other.example.org/x"),
        (atom_with_entry('<link href="p/4"/>'), "https://news.example.com/feeds/p/4"),
        (
            atom_with_entry('<link xml:base="https://blog.example.org/b/" href="p/5"/>'),
            "https://blog.example.org/b/p/5",
        ),
    ],
)
def test_relative_links_resolve_against_the_feed_url(body: bytes, expected: str) -> None:
    assert only_entry(body).link == expected


def test_item_without_link_or_guid_still_parses() -> None:
    entry = only_entry(rss_with_item("<title>Lonely</title><description>words</description>"))

    assert (entry.link, entry.guid) == (None, None)
    assert (entry.title, entry.summary) == ("Lonely", "words")


@pytest.mark.parametrize(
    ("guid", "link"),
    [
        # RSS says a guid is a permalink unless isPermaLink="false"; a bare number is no page.
        ("<guid>42</guid>", None),
        ("<guid>post-42</guid>", None),
        ("<guid>https://news.example.com/?p=42</guid>", "https://news.example.com/?p=42"),
        (
            '<guid isPermaLink="true">https://news.example.com/b</guid>',
            "https://news.example.com/b",
        ),
    ],
)
def test_guid_stands_in_for_a_missing_link_only_when_it_is_a_url(
    guid: str, link: str | None
) -> None:
    assert only_entry(rss_with_item(f"<title>G</title>{guid}")).link == link


def test_guid_that_is_not_a_permalink_is_kept_verbatim() -> None:
    entry = only_entry(rss_with_item('<title>G</title><guid isPermaLink="false">abc-1</guid>'))

    assert (entry.guid, entry.link) == ("abc-1", None)


@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/xml", "text/html"])
def test_well_formed_feed_has_no_warning_whatever_the_content_type(
    content_type: str | None,
) -> None:
    parsed = parse_feed(RSS, url=FEED_URL, content_type=content_type)

    assert parsed.warning is None
    assert len(parsed.entries) == 2


@pytest.mark.parametrize(
    ("body", "titles"),
    [
        pytest.param(
            b'<rss version="2.0"><channel><title>Tom & Jerry</title>'
            b"<item><title>A & B</title><link>https://x.example/1</link></item></channel></rss>",
            ["A & B"],
            id="unescaped-ampersand",
        ),
        pytest.param(
            b'<rss version="2.0"><channel><title>T</title>'
            b"<item><title>One</title><link>https://x.example/1</link></item>"
            b"<item><title>Two</title><link>https://x.example/2</link>"
            b"</channel></rss>",
            ["One", "Two"],
            id="unclosed-item",
        ),
        pytest.param(
            b'<rss version="2.0"><channel><title>T</title>'
            b"<item><title>Caf&eacute;&nbsp;open</title></item></channel></rss>",
            ["Café open"],
            id="html-entity-undefined-in-xml",
        ),
    ],
)
def test_broken_but_readable_document_gives_entries_and_warning(
    body: bytes, titles: list[str]
) -> None:
    parsed = parse_feed(body, url=FEED_URL, content_type="application/rss+xml")

    assert [entry.title for entry in parsed.entries] == titles
    assert parsed.warning


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>hi</p></body></html>",
            "text/html",
            id="html-page",
        ),
        pytest.param(b"", None, id="empty"),
        pytest.param(random.Random(20240910).randbytes(4096), None, id="random-bytes"),
        pytest.param(b"just some words, no markup", "text/plain", id="plain-text"),
        pytest.param(b'{"version": "https://jsonfeed.org/version/1.1"}', None, id="json-no-items"),
        pytest.param(b'{"title": "not a feed", "items": []}', None, id="json-not-a-feed"),
        pytest.param(b'{"version": "https://jsonfeed.org/version/1", ', None, id="json-broken"),
    ],
)
def test_non_feeds_raise_parse_error(body: bytes, content_type: str | None) -> None:
    with pytest.raises(ParseError, match="not a feed") as caught:
        parse_feed(body, url=FEED_URL, content_type=content_type)

    assert caught.value.url == FEED_URL


def test_html_page_is_named_as_such() -> None:
    with pytest.raises(ParseError, match="HTML page"):
        parse_feed(b"\n  <html><body>Welcome</body></html>", url=FEED_URL)


def test_feed_without_items_is_a_feed() -> None:
    body = b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>'

    assert parse_feed(body, url=FEED_URL) == ParsedFeed(
        "Quiet", "", "", "rss20", [], None, parser="fast"
    )


JSON_FEED = b"""{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "JSON World",
  "home_page_url": "https://news.example.com/",
  "language": "en",
  "items": [
    {"id": "1", "url": "/a/1", "title": "First &amp; best",
     "content_html": "<p>Hello <b>world</b></p><script>x()</script>",
     "summary": "Short", "date_published": "2024-09-10T12:00:00+02:00",
     "authors": [{"name": "Ann"}, {"name": "Bob"}]},
    {"id": 2, "external_url": "https://other.example.org/x", "content_text": "Plain text",
     "date_modified": "2024-09-11T08:00:00Z", "author": {"name": "Cy"}},
    "not an item"
  ]
}"""


def test_json_feed_items_become_entries() -> None:
    feed = parse_feed(JSON_FEED, url=FEED_URL, content_type="application/feed+json")

    assert (feed.title, feed.site_url, feed.language, feed.version, feed.parser) == (
        "JSON World", "https://news.example.com/", "en", "json1.1", "json",
    )  # fmt: skip
    first, second = feed.entries
    assert first == ParsedEntry(
        guid="1", link="https://news.example.com/a/1", title="First & best", summary="Short",
        content="Hello world", author="Ann, Bob",
        published_at=datetime(2024, 9, 10, 10, 0, tzinfo=UTC), updated_at=None, language="en",
    )  # fmt: skip
    assert (second.guid, second.link, second.content, second.author) == (
        "2", "https://other.example.org/x", "Plain text", "Cy",
    )  # fmt: skip
    assert second.published_at == second.updated_at == datetime(2024, 9, 11, 8, 0, tzinfo=UTC)
