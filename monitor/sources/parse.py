"""Turn a fetched body into typed entries. The only module that imports feedparser."""

from __future__ import annotations

import calendar
import html
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

from monitor.errors import ParseError

# Elements whose text is never article prose.
_SKIPPED_ELEMENTS = frozenset({"script", "style", "template", "noscript", "svg", "math", "head"})
_BLOCK_ELEMENTS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "blockquote",
        "pre",
        "section",
        "article",
        "figure",
        "figcaption",
        "hr",
        "dd",
        "dt",
    }
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One item of a feed, as plain text and UTC times."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    author: str
    published_at: datetime | None
    updated_at: datetime | None
    language: str = ""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document. ``warning`` is set when the document was broken but readable."""

    title: str
    site_url: str
    language: str
    version: str
    entries: list[ParsedEntry] = field(default_factory=list)
    warning: str | None = None


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth += 1
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable plain text from an HTML fragment: tags dropped, paragraphs kept as blank lines."""
    if "<" not in markup and "&" not in markup:
        return _tidy(markup)
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return _tidy("".join(extractor.parts))


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _utc(parsed: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _detail_text(value: str, detail: Any) -> str:
    kind = (detail or {}).get("type", "text/plain")
    return html_to_text(value) if "html" in kind else _tidy(html.unescape(value))


def _entry_content(entry: Any) -> str:
    parts = [_detail_text(c.get("value", ""), c) for c in entry.get("content") or []]
    return "\n\n".join(part for part in parts if part)


def _optional(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text or None


def _to_entry(entry: Any, language: str) -> ParsedEntry:
    title = _one_line(_detail_text(entry.get("title", ""), entry.get("title_detail")))
    # With content but no summary, feedparser copies the content into "summary" without its type.
    summary_detail = entry.get("summary_detail") or next(iter(entry.get("content") or []), None)
    summary = _detail_text(entry.get("summary", ""), summary_detail)
    # dict.get: feedparser's own .get maps a missing "updated" to "published", with a warning.
    updated = _utc(dict.get(entry, "updated_parsed"))
    return ParsedEntry(
        guid=_optional(entry.get("id")),
        link=_optional(entry.get("link")),
        title=title,
        summary=summary,
        content=_entry_content(entry),
        author=_one_line(html_to_text(entry.get("author", ""))),
        published_at=_utc(dict.get(entry, "published_parsed")) or updated,
        updated_at=updated,
        language=str(entry.get("language") or language),
    )


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse an RSS, Atom or RDF document; raise ParseError when it is not a feed at all."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    document = feedparser.parse(body, response_headers=headers, resolve_relative_uris=True)
    warning = _bozo_message(document)
    if not document.get("version") and not document.entries:
        reason = warning or "no RSS, Atom or RDF document found"
        if _looks_like_html(body):
            reason = "an HTML page, not a feed"
        raise ParseError(url, f"not a feed ({reason})")
    meta = document.feed
    language = str(meta.get("language") or "")
    return ParsedFeed(
        title=_one_line(_detail_text(meta.get("title", ""), meta.get("title_detail"))),
        site_url=str(meta.get("link") or ""),
        language=language,
        version=str(document.get("version") or ""),
        entries=[_to_entry(entry, language) for entry in document.entries],
        warning=warning,
    )


def _bozo_message(document: Any) -> str | None:
    if not document.get("bozo"):
        return None
    exc = document.get("bozo_exception")
    # A declared/actual encoding mismatch, or a missing or non-XML Content-Type, is routine and
    # says nothing about the document; a document that is also malformed reports that instead.
    if isinstance(exc, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType):
        return None
    return _one_line(str(exc)) if exc else "malformed document"


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
