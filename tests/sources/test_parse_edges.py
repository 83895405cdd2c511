"""The parse edge: clear messages for what is not a feed, text that is really HTML, and hostile
characters and links, the same on both parse paths (lxml and feedparser) and for JSON Feed."""

from __future__ import annotations

import json

import pytest

from monitor.errors import ParseError
from monitor.sources.parse import (
    ParsedFeed,
    parse_feed,
    parse_feed_fast,
    parse_feed_reference,
)
from tests.sources.test_parse_differential import differences

FEED_URL = "https://news.example.com/feeds/world.xml"

# --- what is not a feed, and broken documents --------------------------------------------------

# IIS's answer to a moved URL: no <html> element at all.
DOCUMENT_MOVED = (
    b"<head><title>Document Moved</title></head>\r\n<body><h1>Object Moved</h1>This document may"
    b' be found <a HREF="https://news.example.com/rss">here</a></body>'
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(DOCUMENT_MOVED, id="iis-document-moved"),
        pytest.param(b"<!DOCTYPE html><title>x</title><p>hi", id="doctype-html"),
        pytest.param(b"\n<html><body>Welcome</body></html>", id="html"),
        pytest.param(b"<?xml version='1.0'?>\n<body><p>Moved</p></body>", id="body-after-prolog"),
        pytest.param(b"<!-- moved --><title>301 Moved Permanently</title>", id="title-first"),
        pytest.param(b'<meta http-equiv="refresh" content="0; url=/rss">', id="meta-refresh"),
    ],
)
def test_html_pages_are_named_as_such(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url=FEED_URL, content_type="text/html")

    assert caught.value.reason == "parse: not a feed (an HTML page, not a feed)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"just some words", "parse: not a feed (line 1, column 1: syntax error)"),
        (
            b"<foo>x</foo><bar/>",
            "parse: not a feed (line 1, column 13: junk after document element)",
        ),
        (b"<x>\n<y>\n</x>", "parse: not a feed (line 3, column 3: mismatched tag)"),
        # feedparser adds a declaration line only when the document has none: same lines
        (
            b"<?xml version='1.0'?>\n<x/>\n<y/>",
            "parse: not a feed (line 3, column 1: junk after document element)",
        ),
        (
            b"\xef\xbb\xbf<?xml version='1.0'?>\n<x/><y/>",
            "parse: not a feed (line 2, column 5: junk after document element)",
        ),
    ],
)
def test_errors_name_the_line_and_column_not_a_placeholder(body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url=FEED_URL)

    assert caught.value.reason == message
    assert "<unknown>" not in str(caught.value)


def test_the_warning_of_a_broken_feed_names_the_line() -> None:
    body = b"<rss><channel><title>T</title><item><title>A</title></item></channel>\n</rss>\n<x/>"

    parsed = parse_feed(body, url=FEED_URL)

    assert parsed.warning == "line 3, column 1: junk after document element"
    assert [entry.title for entry in parsed.entries] == ["A"]


# --- text said to be plain that is really HTML -------------------------------------------------


def atom_entry(inner: str) -> bytes:
    """An Atom 1.0 document with one entry whose inner XML is ``inner``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>A</title><link href="https://news.example.com/"/><entry><id>urn:1</id>{inner}'
        "</entry></feed>"
    ).encode()


@pytest.mark.parametrize(
    ("inner", "field", "expected"),
    [
        # the report: Drupal's field markup in a type="text" summary
        ('<summary type="text">&lt;div class="field field-name-body"&gt;&lt;p&gt;First.&lt;/p&gt;'
         "&lt;p&gt;Second.&lt;/p&gt;&lt;/div&gt;</summary>", "summary", "First.\n\nSecond."),
        ('<summary>&lt;p&gt;Default type, &lt;a href="/x"&gt;a link&lt;/a&gt;.&lt;/p&gt;</summary>',
         "summary", "Default type, a link."),
        ("<content>&lt;div&gt;Body &amp;amp; more&lt;/div&gt;</content>", "content", "Body & more"),
        ('<title type="text">A &lt;b&gt;bold&lt;/b&gt; move</title>', "title", "A bold move"),
        ("<summary>line one&lt;br&gt;line two</summary>", "summary", "line one\nline two"),
        # prose with angle brackets stays as it is
        ("<summary>1 &lt; 2 and 3 &gt; 2</summary>", "summary", "1 < 2 and 3 > 2"),
        ("<summary>Use &lt;b&gt; for bold</summary>", "summary", "Use <b> for bold"),
        ("<summary>Senate passes &lt;HR 1234&gt;</summary>", "summary", "Senate passes <HR 1234>"),
        ("<summary>&lt;unknown&gt;x&lt;/unknown&gt;</summary>", "summary", "<unknown>x</unknown>"),
        ("<summary>a &lt;b&gt;x&lt;/b&gt; and 1 &lt; 2</summary>", "summary",
         "a <b>x</b> and 1 < 2"),
    ],
)  # fmt: skip
def test_plain_text_that_is_really_html_reads_as_text_on_both_paths(
    inner: str, field: str, expected: str
) -> None:
    body = atom_entry(inner)
    fast = parse_feed_fast(body, url=FEED_URL)
    reference = parse_feed_reference(body, url=FEED_URL)

    assert fast is not None
    assert getattr(fast.entries[0], field) == expected
    assert differences("inline", fast, reference) == []


def test_a_json_feed_summary_that_is_html_reads_as_text() -> None:
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "J",
        "items": [{"id": "1", "url": "https://news.example.com/1",
                   "summary": '<div class="teaser"><p>Teaser</p></div>',
                   "content_text": "1 < 2, as <b> says"}],
    }).encode()  # fmt: skip

    entry = parse_feed(body, url=FEED_URL).entries[0]

    assert (entry.summary, entry.content) == ("Teaser", "1 < 2, as <b> says")


# --- hostile characters and links --------------------------------------------------------------

RLO = "\u202e"
HOSTILE_TITLE = f"Invoice \x1b[31mURGENT\x1b[0m gnp{RLO}.exe\x07\x08"
CLEAN_TITLE = "Invoice URGENT gnp.exe"


def rss_item(title: str, link: str, description: str, author: str = "Ann") -> bytes:
    """A well-formed RSS 2.0 document with one item (characters XML cannot carry as escapes)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Feed{RLO} title</title><link>https://news.example.com/</link>"
        f"<item><title>{title}</title><link>{link}</link><guid>g-1</guid>"
        f"<description>{description}</description><dc:creator>{author}</dc:creator></item>"
        "</channel></rss>"
    ).encode()


# XML 1.0 cannot carry ESC or BEL, not even as &#27;: a feed brings them inside escaped HTML
# (&amp;#27;), as a loose parser repairs them, or in a JSON Feed.
XML_HOSTILE = rss_item(
    "Invoice &amp;#27;[31mURGENT&amp;#27;[0m gnp\u202e.exe&amp;#7;",
    "javascript:alert(document.cookie)",
    "&lt;p&gt;Read \u2066this\u2069 &amp;#27;]0;owned&amp;#7;now&lt;/p&gt;",
    author=f"Eve{RLO}",
)


@pytest.mark.parametrize(
    ("link", "kept"),
    [
        ("javascript:alert(1)", None),
        ("data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;", None),
        ("vbscript:msgbox(1)", None),
        ("  JavaScript:alert(1)", None),
        ("/a/1", "https://news.example.com/a/1"),
        ("https://news.example.com/a/1", "https://news.example.com/a/1"),
    ],
)
def test_only_web_links_are_kept_on_both_paths(link: str, kept: str | None) -> None:
    body = rss_item("T", link, "d")
    fast = parse_feed_fast(body, url=FEED_URL)
    reference = parse_feed_reference(body, url=FEED_URL)

    assert fast is not None
    assert fast.entries[0].link == reference.entries[0].link == kept


def test_hostile_characters_are_stripped_on_both_paths() -> None:
    fast = parse_feed_fast(XML_HOSTILE, url=FEED_URL)
    reference = parse_feed_reference(XML_HOSTILE, url=FEED_URL)

    assert fast is not None
    for parsed in (fast, reference):
        entry = parsed.entries[0]
        assert (parsed.title, entry.title, entry.author) == ("Feed title", CLEAN_TITLE, "Eve")
        assert entry.summary == "Read this now"
        assert entry.link is None
    assert differences("inline", fast, reference) == []


def test_hostile_characters_in_a_broken_feed_are_stripped_too() -> None:
    # A bare "&" sends the document to feedparser, which repairs what it can.
    body = XML_HOSTILE.replace(b"<title>Feed", b"<title>A & B Feed")

    parsed = parse_feed(body, url=FEED_URL)

    assert parsed.parser == "feedparser"
    assert parsed.entries[0].title == CLEAN_TITLE


def test_hostile_characters_in_a_json_feed_are_stripped() -> None:
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": f"J{RLO}\x1b[2J",
        "home_page_url": "javascript:alert(1)",
        "items": [{"id": "1", "url": "data:text/html,x", "title": HOSTILE_TITLE,
                   "content_text": "a\x1b[31mb\rc\x00d", "summary": f"s{RLO}",
                   "authors": [{"name": "Eve\x1b]0;x\x07"}]}],
    }).encode()  # fmt: skip

    parsed = parse_feed(body, url=FEED_URL)
    entry = parsed.entries[0]

    assert (parsed.title, parsed.site_url) == ("J", "")
    assert (entry.title, entry.link, entry.author) == (CLEAN_TITLE, None, "Eve")
    assert (entry.content, entry.summary) == ("ab cd", "s")


@pytest.mark.parametrize(
    ("reference", "summary"),
    [
        ("&amp;#27;", "a b\n\nc"),  # the whole escape sequence goes
        ("&amp;#x1b;", "a b\n\nc"),
        ("&amp;#x7f;", "a [31m b\n\nc"),
        ("&amp;#0;", "a \ufffd[31m b\n\nc"),  # HTML reads a NUL reference as U+FFFD
    ],
)
def test_an_escaped_control_inside_html_does_not_crash_the_parse(
    reference: str, summary: str
) -> None:
    # lxml reads "&#27;" as ESC and then refused the text with it ("All strings must be XML
    # compatible"): the whole feed failed to parse.
    body = rss_item("T", "/a", f"&lt;p&gt;a {reference}[31m b&lt;/p&gt;&lt;p&gt;c&lt;/p&gt;")

    for parse in (parse_feed_fast, parse_feed_reference):
        parsed = parse(body, url=FEED_URL)
        assert parsed is not None
        assert parsed.entries[0].summary == summary


def test_a_feed_site_link_is_kept_only_when_http() -> None:
    body = rss_item("T", "/a", "d").replace(
        b"<link>https://news.example.com/</link>", b"<link>javascript:alert(1)</link>", 1
    )

    parsed = parse_feed(body, url=FEED_URL)

    assert isinstance(parsed, ParsedFeed)
    assert parsed.site_url == ""
