"""Reading and writing OPML subscription lists."""

from __future__ import annotations

import pytest

from monitor.errors import ConfigError
from monitor.sources.opml import OpmlFeed, read_opml, write_opml

SOURCE = "config/feeds.opml"


def opml(body: str) -> bytes:
    """An OPML 2.0 document whose ``<body>`` holds ``body``."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">\n'
        f"<head><title>t</title></head>\n<body>\n{body}\n</body>\n</opml>\n"
    ).encode()


FEEDS = [
    OpmlFeed("https://news.example.com/world.rss", "World", "https://news.example.com/", "News"),
    OpmlFeed("https://markets.example.com/atom", "Märkte & Börse", "", "Business"),
    OpmlFeed("https://news.example.com/politics.rss", "Politics", "", "News"),
    OpmlFeed("https://blog.example.org/feed"),
]


def by_url(feeds: list[OpmlFeed]) -> list[OpmlFeed]:
    return sorted(feeds, key=lambda feed: feed.url)


def test_write_then_read_gives_the_same_feeds() -> None:
    # Order may change (feeds are grouped by folder); nothing else may.
    assert by_url(read_opml(write_opml(FEEDS), source=SOURCE)) == by_url(FEEDS)


def test_written_document_groups_feeds_in_one_folder_per_category() -> None:
    document = write_opml(FEEDS).decode()

    assert document.startswith("<?xml")
    assert document.count('<outline text="News" title="News">') == 1
    assert document.count('<outline text="Business" title="Business">') == 1


def test_nested_folders_give_the_innermost_folder_as_category() -> None:
    body = """
      <outline text="News">
        <outline title="World">
          <outline type="rss" text="A" xmlUrl="https://a.example/feed"/>
        </outline>
        <outline type="rss" text="B" xmlUrl="https://b.example/feed"/>
        <outline text="">
          <outline type="rss" xmlurl="https://c.example/feed"/>
        </outline>
      </outline>
      <outline type="rss" text="D" xmlUrl="https://d.example/feed" htmlUrl=" https://d.example/ "/>
    """

    assert read_opml(opml(body), source=SOURCE) == [
        OpmlFeed("https://a.example/feed", "A", "", "World"),
        OpmlFeed("https://b.example/feed", "B", "", "News"),
        OpmlFeed("https://c.example/feed", "", "", "News"),
        OpmlFeed("https://d.example/feed", "D", "https://d.example/", ""),
    ]


def test_duplicate_urls_keep_the_first() -> None:
    body = """
      <outline text="One"><outline text="first" xmlUrl="https://a.example/feed"/></outline>
      <outline text="Two"><outline text="second" xmlUrl=" https://a.example/feed "/></outline>
      <outline text="other" xmlUrl="https://b.example/feed"/>
    """

    feeds = read_opml(opml(body), source=SOURCE)

    assert [(f.url, f.title, f.category) for f in feeds] == [
        ("https://a.example/feed", "first", "One"),
        ("https://b.example/feed", "other", ""),
    ]


def test_outlines_without_a_url_are_folders_not_feeds() -> None:
    body = '<outline text="Empty folder"/><outline text="x" htmlUrl="https://site.example/"/>'

    assert read_opml(opml(body), source=SOURCE) == []


@pytest.mark.parametrize(
    ("data", "line"),
    [
        pytest.param(b"<opml>\n<body>\n<outline", 3, id="truncated"),
        pytest.param(
            b'<?xml version="1.0"?>\n<opml>\n<body>\n<outline xmlUrl="x">\n</body>\n</opml>',
            5,
            id="mismatched-tag",
        ),
        pytest.param(b"<opml><body><outline text='a & b'/></body></opml>", 1, id="bare-amp"),
        pytest.param(b"", 1, id="empty"),
    ],
)
def test_malformed_xml_names_source_and_line(data: bytes, line: int) -> None:
    with pytest.raises(ConfigError, match="not valid OPML/XML") as caught:
        read_opml(data, source=SOURCE)

    assert caught.value.source == SOURCE
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{SOURCE}:{line}: ")


@pytest.mark.parametrize(
    "data",
    [
        b'<rss version="2.0"><channel><title>t</title></channel></rss>',
        b'<opml version="2.0"><head><title>no body</title></head></opml>',
        b"<html><body><p>hello</p></body></html>",
    ],
)
def test_xml_that_is_not_opml_is_refused(data: bytes) -> None:
    with pytest.raises(ConfigError, match="not an OPML document") as caught:
        read_opml(data, source=SOURCE)

    assert caught.value.source == SOURCE


def test_entity_expansion_bomb_is_refused() -> None:
    entities = '<!ENTITY e0 "xxxxxxxxxx">' + "".join(
        f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10)
    )
    data = f'<!DOCTYPE opml [{entities}]><opml><body><outline xmlUrl="&e9;"/></body></opml>'

    with pytest.raises(ConfigError, match=SOURCE):
        read_opml(data.encode(), source=SOURCE)
