"""Read and write OPML subscription lists."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from monitor.errors import ConfigError


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed outline: its URL, a title and the folder it sits in."""

    url: str
    title: str = ""
    site_url: str = ""
    category: str = ""
    # The outline's fetchPages attribute (auto, always, never); None when it has none.
    fetch_pages: str | None = None


FETCH_PAGES_ATTRIBUTE = "fetchPages"
FETCH_PAGES_VALUES = ("auto", "always", "never")


def read_opml(data: bytes, *, source: str) -> list[OpmlFeed]:
    """Every feed outline in an OPML document; ``source`` names the document in errors."""
    # Python's expat refuses entity-expansion bombs and never fetches external entities.
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise ConfigError(source, f"not valid OPML/XML: {exc.msg}", line=line) from None
    if root.tag != "opml" or root.find("body") is None:
        raise ConfigError(source, "not an OPML document (expected <opml> with a <body>)")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline, category in _walk(root.find("body"), ""):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = (outline.get("title") or outline.get("text") or "").strip()
        # An untitled feed's required "text" holds its URL (write_opml does this): not a title.
        title = "" if title == url else title
        fetch_pages = (outline.get(FETCH_PAGES_ATTRIBUTE) or "").strip().lower() or None
        if fetch_pages is not None and fetch_pages not in FETCH_PAGES_VALUES:
            raise ConfigError(
                source,
                f"feed {url}: {FETCH_PAGES_ATTRIBUTE}={fetch_pages!r} "
                f"(use {', '.join(FETCH_PAGES_VALUES)})",
            )
        site_url = (outline.get("htmlUrl") or "").strip()
        feeds.append(OpmlFeed(url, title, site_url, category, fetch_pages))
    return feeds


def _walk(element: ET.Element | None, category: str) -> Iterable[tuple[ET.Element, str]]:
    for outline in element.findall("outline") if element is not None else []:
        if outline.get("xmlUrl") or outline.get("xmlurl"):
            yield outline, category
        else:
            folder = outline.get("title") or outline.get("text") or ""
            yield from _walk(outline, folder.strip() or category)


def write_opml(feeds: Iterable[OpmlFeed], *, title: str = "monitor feeds") -> bytes:
    """An OPML 2.0 document listing ``feeds``, grouped in folders by category."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.category:
            if feed.category not in folders:
                folders[feed.category] = ET.SubElement(
                    body, "outline", text=feed.category, title=feed.category
                )
            parent = folders[feed.category]
        attributes = {"type": "rss", "text": feed.title or feed.url, "xmlUrl": feed.url}
        if feed.title:
            attributes["title"] = feed.title
        if feed.site_url:
            attributes["htmlUrl"] = feed.site_url
        if feed.fetch_pages and feed.fetch_pages != "auto":
            attributes[FETCH_PAGES_ATTRIBUTE] = feed.fetch_pages
        ET.SubElement(parent, "outline", attributes)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
