"""The fast parse path against feedparser (the reference), over the real corpus and odd inputs.

The corpus is found through ``$MONITOR_CORPUS`` or at ``../shared/corpus`` beside the repository
(as in test_corpus.py) and only read, never copied; without it the corpus tests are skipped.
"""

from __future__ import annotations

import os
import pickle
import random
from dataclasses import fields
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.sources.parse import (
    ParsedEntry,
    ParsedFeed,
    parse_feed,
    parse_feed_fast,
    parse_feed_reference,
)

CORPUS_ENV = os.environ.get("MONITOR_CORPUS")
DEFAULT_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
CONTENT_TYPE = "application/xml"
FEED_URL = "https://news.example.com/feeds/world.xml"
# The share of the corpus's XML documents the fast path must take. When written: 184 of 199.
# To feedparser: 7 not well-formed, 5 with a second summary (which feedparser files as content),
# 1 relative xml:base, 1 image inside an item, 1 Atom source inside an entry.
MIN_FAST_SHARE = 0.85
FEED_FIELDS = (
    "title", "site_url", "language", "version", "ttl", "update_period", "update_frequency",
)  # fmt: skip
ENTRY_FIELDS = tuple(f.name for f in fields(ParsedEntry))

# Differences accepted between the paths: (corpus file, entry index or None, field) -> reason.
# Empty: over the corpus the fast path gives feedparser's values exactly, dates included (it
# calls feedparser's own date parser, 3 µs a date, so feedparser's date quirks are shared).
# What monitor adds on top of feedparser's reading (text said to be plain that is really HTML
# read as text; controls, escapes and bidi overrides stripped; only http(s) links) happens in
# parse.py's one conversion that both paths share, so both sides are normalised alike and the
# comparison still tests only the reading (tests/sources/test_parse_edges.py tests the rest).
ACCEPTED_DIFFERENCES: dict[tuple[str, int | None, str], str] = {}


def corpus_feeds() -> Path:
    """The corpus's ``feeds/`` directory, or a skip naming where it was looked for."""
    corpus = Path(CORPUS_ENV) if CORPUS_ENV else DEFAULT_CORPUS
    if not (corpus / "feeds").is_dir():
        pytest.skip(
            f"feed corpus not found at {corpus}/feeds: set MONITOR_CORPUS to the directory "
            "that holds feeds/ (and INDEX.tsv) to run the differential corpus test"
        )
    return corpus / "feeds"


def differences(name: str, fast: ParsedFeed, reference: ParsedFeed) -> list[str]:
    """Every field where the two parses differ, less the accepted ones."""
    found = [
        f"{name} feed.{key}: {getattr(fast, key)!r} != {getattr(reference, key)!r}"
        for key in FEED_FIELDS
        if getattr(fast, key) != getattr(reference, key)
        and (name, None, key) not in ACCEPTED_DIFFERENCES
    ]
    if len(fast.entries) != len(reference.entries):
        return [*found, f"{name}: {len(fast.entries)} != {len(reference.entries)} entries"]
    for index, (ours, theirs) in enumerate(zip(fast.entries, reference.entries, strict=True)):
        found.extend(
            f"{name} entry {index} {key}: {getattr(ours, key)!r} != {getattr(theirs, key)!r}"
            for key in ENTRY_FIELDS
            if getattr(ours, key) != getattr(theirs, key)
            and (name, index, key) not in ACCEPTED_DIFFERENCES
        )
    return found


@pytest.mark.slow
def test_fast_path_equals_feedparser_over_the_corpus() -> None:
    xml_documents = taken_fast = 0
    found: list[str] = []
    for path in sorted(corpus_feeds().iterdir()):
        body = path.read_bytes()
        if body.lstrip()[:1] == b"{":
            continue  # JSON Feed: neither path
        xml_documents += 1
        url = f"http://127.0.0.1/{path.name}"
        try:
            fast = parse_feed_fast(body, url=url, content_type=CONTENT_TYPE)
        except ParseError:
            continue
        if fast is None:
            continue
        taken_fast += 1
        reference = parse_feed_reference(body, url=url, content_type=CONTENT_TYPE)
        assert (fast.parser, reference.parser) == ("fast", "feedparser")
        assert pickle.loads(pickle.dumps(fast)) == fast, "sent across a process pool"
        found.extend(differences(path.name, fast, reference))

    print(f"fast path: {taken_fast} of {xml_documents} XML documents")
    assert found == []
    assert taken_fast >= MIN_FAST_SHARE * xml_documents, f"{taken_fast} of {xml_documents}"


def rss(items: str, *, channel: str = "", prolog: str = "") -> bytes:
    """An RSS 2.0 document with the common namespaces declared."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}<rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"'
        ' xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f"<channel><title>T</title><link>https://news.example.com/</link>{channel}"
        f"{items}</channel></rss>"
    ).encode()


def atom(entries: str, *, namespace: str = "http://www.w3.org/2005/Atom", attrs: str = "") -> bytes:
    """An Atom document (1.0 unless another namespace is given)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="{namespace}"{attrs}>'
        f'<title>A</title><link rel="alternate" href="https://news.example.com/"/>{entries}</feed>'
    ).encode()


RDF = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://news.example.com/"><title>R</title><link>https://news.example.com/</link>
<dc:language>en</dc:language></channel>
<item rdf:about="https://news.example.com/a/1"><title>One</title><link>/a/1</link>
<dc:creator>Ann</dc:creator><dc:date>2024-09-10T08:15:00-05:00</dc:date>
<description>&lt;p&gt;Body&lt;/p&gt;</description></item></rdf:RDF>"""

# feedparser keeps an xml:base after its element ends when the parent had none: entry 2's
# relative link resolves against the base given on entry 1's content.
XML_BASE_CARRIED_OVER = atom(
    '<entry><id>1</id><content type="html" xml:base="https://b.example/x/">c</content></entry>'
    '<entry><id>2</id><link href="p/6"/></entry>'
)

WELL_FORMED = [
    pytest.param(rss("<item><title>A</title><guid>42</guid></item>"), id="rss20-guid-number"),
    pytest.param(
        rss("<item><title>A &amp;amp; B &amp;eacute;</title><link>/a/1</link></item>"),
        id="html-entity-title",
    ),
    pytest.param(
        rss(
            "<item><title>A</title><link>https://x.example/1</link>"
            "<content:encoded><![CDATA[<p>One &amp; <b>two</b></p><script>x()</script>]]>"
            "</content:encoded><dc:creator>Ann</dc:creator>"
            "<dc:date>2024-09-10T08:15:00-05:00</dc:date></item>"
        ),
        id="cdata-content-encoded-dc",
    ),
    pytest.param(
        rss(
            "<item><title>A</title><link>https://proxy.example/r/1</link>"
            "<feedburner:origLink>https://news.example.com/a/1</feedburner:origLink>"
            "<pubDate>Tue, 10 Sep 2024 12:00:00 EDT</pubDate></item>"
        ),
        id="feedburner-origlink",
    ),
    pytest.param(
        rss(
            "<item><title>A</title><media:group><media:title>M</media:title>"
            "<media:description>Desc &lt;b&gt;x&lt;/b&gt;</media:description></media:group>"
            '<media:content url="https://x.example/v.mp4"/></item>',
            channel="<ttl>30</ttl><sy:updatePeriod>hourly</sy:updatePeriod>"
            "<sy:updateFrequency>2</sy:updateFrequency><language>de</language>",
        ),
        id="media-and-polling-hints",
    ),
    pytest.param(
        b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        b"<title>BOM</title><item><title>Caf\xc3\xa9</title></item></channel></rss>",
        id="utf8-bom",
    ),
    pytest.param(
        b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="0.91"><channel>'
        b"<title>Latin</title><item><title>Caf\xe9 \x93quoted\x94</title></item></channel></rss>",
        id="rss091-latin1-cp1252",
    ),
    pytest.param(RDF, id="rss10-rdf"),
    pytest.param(
        # feedparser repairs double-encoded UTF-8 whatever encoding the document declares.
        b'<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>L</title>'
        b"<item><title>Caf&#195;&#169; \xe9</title></item><item><title>&#195;&#169;</title></item>"
        b"</channel></rss>",
        id="latin1-double-encoded-utf8",
    ),
    pytest.param(
        atom('<entry><id>urn:1</id><link xml:base="https://b.example/x/" href="p/5"/></entry>'),
        id="xml-base-on-link",
    ),
    pytest.param(XML_BASE_CARRIED_OVER, id="xml-base-carried-over"),
    pytest.param(
        atom(
            "<entry><id>urn:1</id><title>A</title><author><name>Ann</name>"
            '<gd:image xmlns:gd="http://schemas.google.com/g/2005" src="i.png"/></author></entry>'
        ),
        id="blogger-author-image",
    ),
    pytest.param(
        rss(
            '<item><title>A</title><source url="https://o.example/rss">Outlet</source>'
            "<title>B</title></item>"
        ),
        id="rss-source-resets-title",
    ),
    pytest.param(
        atom(
            '<entry><id>urn:1</id><title type="html">&lt;em&gt;Hi&lt;/em&gt;</title>'
            '<link href="/a/1"/><author><name>Ann</name><email>a@x.example</email></author>'
            "<published>2024-09-09T23:30:00-01:00</published>"
            '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>A</p>'
            "<p>B<br/>C</p></div></content></entry>"
        ),
        id="atom10-xhtml",
    ),
    pytest.param(
        atom(
            "<entry><id>urn:1</id><title>Old</title><issued>2004-09-10T10:00:00Z</issued>"
            '<link rel="alternate" type="text/html" href="https://x.example/1"/>'
            '<summary type="text/plain">s</summary></entry>',
            namespace="http://purl.org/atom/ns#",
            attrs=' version="0.3"',
        ),
        id="atom03",
    ),
]


@pytest.mark.parametrize("body", WELL_FORMED)
def test_well_formed_inputs_take_the_fast_path_with_feedparser_values(body: bytes) -> None:
    parsed = parse_feed(body, url=FEED_URL, content_type=CONTENT_TYPE)
    reference = parse_feed_reference(body, url=FEED_URL, content_type=CONTENT_TYPE)

    assert parsed.parser == "fast"
    assert differences("inline", parsed, reference) == []
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_xml_base_is_carried_over_as_feedparser_does() -> None:
    parsed = parse_feed(XML_BASE_CARRIED_OVER, url=FEED_URL)

    assert parsed.parser == "fast"
    assert parsed.entries[1].link == "https://b.example/x/p/6"


DECLINED = [
    pytest.param(
        atom('<entry><id>urn:1</id><link xml:base="/sub/" href="p/5"/></entry>'),
        id="relative-xml-base",
    ),
    pytest.param(
        atom(
            '<entry><id>urn:1</id><title>A</title><author><uri>u</uri><x:b xmlns:x="urn:x">'
            "<x:c/></x:b></author></entry>"
        ),
        id="nested-markup-in-author",
    ),
    pytest.param(
        rss("<item><title>A</title><description>a</description><summary>b</summary></item>"),
        id="second-summary",
    ),
    pytest.param(
        rss("<item><title>A</title></item>").replace(b'encoding="utf-8"', b'encoding="latin-1"'),
        id="charset-header-disagrees",
    ),
]


@pytest.mark.parametrize("body", DECLINED)
def test_shapes_not_modelled_go_to_feedparser(body: bytes) -> None:
    content_type = "application/xml; charset=utf-8"
    parsed = parse_feed(body, url=FEED_URL, content_type=content_type)

    assert parse_feed_fast(body, url=FEED_URL, content_type=content_type) is None
    assert parsed.parser == "feedparser"
    assert parsed == parse_feed_reference(body, url=FEED_URL, content_type=content_type)


BROKEN = [
    pytest.param(rss("<item><title>A & B</title></item>"), id="bare-ampersand"),
    pytest.param(rss("<item><title>A</title>"), id="unclosed-item"),
    pytest.param(rss("<item><title>Caf&eacute;</title></item>"), id="html-entity-in-xml"),
    pytest.param(
        rss("<item><title>A</title></item>").replace(b"utf-8", b"utf-16"),
        id="wrong-encoding-declaration",
    ),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
        b"<title>N</title><item><title>A</title></item></channel></rss>",
        id="doctype",
    ),
]


@pytest.mark.parametrize("body", BROKEN)
def test_documents_that_are_not_well_formed_go_to_feedparser(body: bytes) -> None:
    parsed = parse_feed(body, url=FEED_URL, content_type=CONTENT_TYPE)

    assert parse_feed_fast(body, url=FEED_URL, content_type=CONTENT_TYPE) is None
    assert parsed.parser == "feedparser"
    assert parsed.entries, "feedparser still reads the entries"


@pytest.mark.parametrize("body", [b"<rss><channel><title>A & B</title></channel></rss>"])
def test_broken_document_keeps_feedparser_warning(body: bytes) -> None:
    parsed = parse_feed(body, url=FEED_URL)

    assert (parsed.parser, bool(parsed.warning)) == ("feedparser", True)


# Pieces of items and entries, combined at random below: repeated, empty and nested elements
# are where feedparser's rules about which value wins show.
ITEM_PIECES = (
    "<title>T1</title>", "<title></title>", "<title>A &lt;b&gt;x&lt;/b&gt;</title>",
    "<title>x &amp;amp; y</title>", "<title><![CDATA[<b>cd</b> &amp; x]]></title>",
    "<title>1 &lt; 2</title>", "<title>Caf\u00c3\u00a9 \u0096</title>",
    "<link>https://x.example/1</link>", "<link>/rel/2</link>", "<link></link>",
    "<link>https://x.example/?a=1&amp;amp;b=2</link>", "<guid>42</guid>",
    '<guid isPermaLink="false">g-1</guid>', '<guid isPermaLink="True">https://x.example/g</guid>',
    "<description>d &lt;p&gt;p&lt;/p&gt;</description>", "<description>plain</description>",
    "<content:encoded><![CDATA[<p>c</p>]]></content:encoded>", "<dc:creator>Ann</dc:creator>",
    "<author>a@x.example (Ann)</author>", "<pubDate>Tue, 10 Sep 2024 12:00:00 +0200</pubDate>",
    "<pubDate>garbage</pubDate>", "<dc:date>2024-09-10T08:15:00-05:00</dc:date>",
    "<feedburner:origLink>https://o.example/1</feedburner:origLink>",
    '<enclosure url="https://x.example/a.mp3" type="audio/mpeg"/>',
    "<media:group><media:title>MT</media:title><media:description>MD</media:description>"
    "</media:group>",
    "<media:title>MT2</media:title>",
    "<media:description>M &lt;i&gt;i&lt;/i&gt;</media:description>",
    '<source url="https://s.example/">S</source>', "<language>fr</language>",
    "<dc:title>DT</dc:title>", "<foo><title>nested</title></foo>",
    '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="alternate" href="https://x.example/a"/>',
)  # fmt: skip
ENTRY_PIECES = (
    "<title>T</title>", '<title type="html">&lt;em&gt;H&lt;/em&gt;</title>',
    '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">X<b>y</b></div></title>',
    "<id>urn:1</id>", "<id>42</id>", '<link href="/a"/>', '<link rel="related" href="/r"/>',
    '<link rel="alternate" type="text/html" href="https://x.example/b"/>',
    '<link rel="enclosure" href="https://x.example/e.mp3"/>', "<summary>s</summary>",
    '<summary type="html">&lt;p&gt;s&lt;/p&gt;</summary>', "<content>plain c</content>",
    '<content type="html">&lt;p&gt;c&lt;/p&gt;</content>', '<content src="https://x.example/c"/>',
    '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content>',
    "<author><name>Ann</name></author>", "<author><email>c@x.example</email></author>",
    "<author><name>Bob</name><email>b@x.example</email></author>",
    "<published>2024-09-09T23:30:00-01:00</published>", "<updated>nope</updated>",
    "<updated>2024-09-10T12:00:00+02:00</updated>",
)  # fmt: skip
CHANNEL_PIECES = (
    "<ttl>5</ttl>", "<language>de</language>", "<title>Second</title>", "<link>/site/</link>",
    "<image><title>I</title><url>https://x/i</url><link>https://x/</link></image>",
    "<sy:updatePeriod>daily</sy:updatePeriod>", "<dc:language>pt</dc:language>",
)  # fmt: skip


def random_document(rng: random.Random) -> bytes:
    """An RSS 2.0 or Atom 1.0 document of 1 to 3 entries built from random pieces."""
    if rng.random() < 0.5:
        entries = "".join(
            "<entry>" + "".join(rng.sample(ENTRY_PIECES, rng.randint(0, 7))) + "</entry>"
            for _ in range(rng.randint(1, 3))
        )
        return atom(entries)
    items = "".join(
        "<item>" + "".join(rng.sample(ITEM_PIECES, rng.randint(0, 7))) + "</item>"
        for _ in range(rng.randint(1, 3))
    )
    return rss(items, channel="".join(rng.sample(CHANNEL_PIECES, rng.randint(0, 3))))


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_read_alike(seed: int) -> None:
    rng = random.Random(seed)
    found, taken_fast = [], 0
    for number in range(100):
        body = random_document(rng)
        fast = parse_feed_fast(body, url=FEED_URL, content_type=CONTENT_TYPE)
        if fast is None:
            continue
        taken_fast += 1
        reference = parse_feed_reference(body, url=FEED_URL, content_type=CONTENT_TYPE)
        found.extend(differences(f"seed {seed} document {number}", fast, reference))

    assert found == []
    assert taken_fast >= 60, "most random documents are shapes the fast path reads"
