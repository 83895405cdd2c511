"""Turn a fetched body into typed entries. The only module that imports feedparser.

Two paths give the same values. A well-formed XML document (checked with a strict, safe lxml
parse) takes the fast path (fastparse.py: lxml; reading a document costs about an eighth of
feedparser's time); a broken one, or one with anything the fast path does not model, takes
feedparser, which repairs what it can and says so in ``warning``. feedparser is the reference:
tests/sources/test_parse_differential.py compares both over the real corpus. Markup becomes
plain text in sanitize.py, the same for both paths.
"""

from __future__ import annotations

import calendar
import codecs
import html
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXParseException

import feedparser
from feedparser.datetimes import _parse_date as _feedparser_date
from feedparser.sanitizer import _HTMLSanitizer

from monitor.errors import ParseError
from monitor.sources.fastparse import Declined, parse_well_formed, read_document
from monitor.sources.sanitize import html_to_text, sanitize_html
from monitor.sources.sanitize import one_line as _one_line
from monitor.sources.sanitize import tidy_text as _tidy
from monitor.untrusted import strip_controls, web_url

__all__ = [
    "ParsedEntry",
    "ParsedFeed",
    "html_to_text",
    "parse_feed",
    "parse_feed_fast",
    "parse_feed_reference",
    "parse_json_feed",
    "refuse_entity_declarations",
    "sanitize_html",
]
# ParsedFeed.parser: which path read the document.
FAST = "fast"
REFERENCE = "feedparser"
JSON = "json"
# The element names for which feedparser takes RSS "plain text" to be HTML.
_HTML_NAMES = frozenset(_HTMLSanitizer.acceptable_elements)
# Elements a document that is not a feed may open with (after its prolog) to count as an HTML page.
_HTML_PAGE_ELEMENTS = _HTML_NAMES | {"html", "head", "body", "title", "meta", "link", "script"}
_FIRST_TAG = re.compile(rb"<([a-z][a-z0-9]*)[\s/>]")
# A tag in text said to be plain: an end tag, or a start tag with well-formed attributes.
_MARKUP_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9]*)((?:\s+[A-Za-z_:][\w:.-]*"
    r"(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*\s*/?)>"
)
_VOID = frozenset({"br", "hr", "img"})
_XML_DECLARATION = re.compile(r"<\?xml[^>]*?>")
# A place in an error of a document without a name, as expat prints it.
_UNKNOWN_PLACE = re.compile(r"<unknown>:(\d+):(\d+):\s*")


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
    # The feed's own polling hints, raw: RSS <ttl> (minutes), sy:updatePeriod / updateFrequency.
    ttl: str | None = None
    update_period: str | None = None
    update_frequency: str | None = None
    # Which path read the document: FAST (lxml), REFERENCE (feedparser) or JSON (a JSON Feed).
    parser: str = REFERENCE


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
    # Text said to be plain (Atom's type="text", the default) is sometimes HTML all the same:
    # a reader sees its text, not "<div class=...>"; feedparser leaves the tags in.
    if "html" in kind or _is_markup(value):
        return html_to_text(value)
    return _tidy(html.unescape(value))


def _is_markup(text: str) -> bool:
    """Whether "plain" text is really HTML: HTML tags only, and at least one that no prose has
    (an end tag, a tag with attributes, or a <br>, <hr>, <img>); "1 < 2" or "<HR 1234>" is not."""
    if "<" not in text:
        return False
    tags = _MARKUP_TAG.findall(text)
    if not tags or any(name.lower() not in _HTML_PAGE_ELEMENTS for _, name, _ in tags):
        return False
    if len(tags) != text.count("<"):
        return False  # a "<" that opens no tag: prose such as "a <b> c" around the tags
    return any(end or attributes.strip() or name.lower() in _VOID for end, name, attributes in tags)


def _entry_content(entry: Any) -> tuple[str, dict[tuple[str, str], str]]:
    """The entry's content as text, and each piece's text by (value, type) for reuse."""
    texts: dict[tuple[str, str], str] = {}
    for content in entry.get("content") or []:
        key = (content.get("value", ""), content.get("type", "text/plain"))
        if key not in texts:
            texts[key] = _detail_text(key[0], content)
    parts = [texts[(c.get("value", ""), c.get("type", "text/plain"))] for c in entry["content"]]
    return "\n\n".join(part for part in parts if part), texts


def _optional(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text or None


# Where a feed names the original article behind its own redirecting or proxied link:
# FeedBurner's feedburner:origLink and Pheedo's pheedo:origLink (the link
# itself points at the proxy, so each outlet's copy would have a key of its own).
_ORIGINAL_LINK_FIELDS = ("feedburner_origlink", "pheedo_origlink")


def _entry_link(entry: Any, feed_url: str) -> str | None:
    for name in _ORIGINAL_LINK_FIELDS:
        original = _optional(entry.get(name))
        if original is not None and _is_web_url(original):
            return original.strip()
    link = _optional(entry.get("link"))
    if link is None:
        return None
    # feedparser makes an RSS <guid> the link when there is no <link>; a guid such as "42" is
    # no page, so only a guid that is already an absolute web URL stands in for the link.
    if entry.get("guidislink") and not entry.get("links"):
        return link if _is_web_url(link) else None
    return urljoin(feed_url, link)


def _is_web_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def _to_entry(entry: Any, feed_url: str, language: str) -> ParsedEntry:
    title = _one_line(_detail_text(entry.get("title", ""), entry.get("title_detail")))
    # With content but no summary, feedparser copies the content into "summary" without its type.
    summary_detail = entry.get("summary_detail") or next(iter(entry.get("content") or []), None)
    summary_value = entry.get("summary", "")
    content, content_texts = _entry_content(entry) if entry.get("content") else ("", {})
    # Often the summary is the content itself: its text is worked out once.
    summary_key = (summary_value, (summary_detail or {}).get("type", "text/plain"))
    summary = content_texts.get(summary_key)
    if summary is None:
        summary = _detail_text(summary_value, summary_detail)
    # dict.get: feedparser's own .get maps a missing "updated" to "published", with a warning.
    updated = _utc(dict.get(entry, "updated_parsed"))
    return _safe_entry(
        guid=_optional(entry.get("id")),
        link=_entry_link(entry, feed_url),
        title=title,
        summary=summary,
        content=content,
        author=_one_line(html_to_text(entry.get("author", ""))),
        published_at=_utc(dict.get(entry, "published_parsed")) or updated,
        updated_at=updated,
        language=str(entry.get("language") or language),
    )


def _safe_entry(
    *, guid: str | None, link: str | None, title: str, summary: str, content: str, author: str,
    published_at: datetime | None, updated_at: datetime | None, language: str,
) -> ParsedEntry:  # fmt: skip
    """The entry as stored, whichever parser read it: no control characters, terminal escapes
    or bidi overrides in its text (monitor.untrusted), and a link only when it is http(s)."""
    return ParsedEntry(
        guid=guid,
        link=web_url(link) or None,
        title=_one_line(strip_controls(title)),
        summary=strip_controls(summary),
        content=strip_controls(content),
        author=_one_line(strip_controls(author)),
        published_at=published_at,
        updated_at=updated_at,
        language=language,
    )


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse an RSS, Atom, RDF or JSON Feed document; raise ParseError when it is not a feed."""
    if not body.strip():
        raise ParseError(url, "not a feed (empty body)")
    if body.lstrip()[:1] == b"{":
        return parse_json_feed(body, url=url)
    refuse_entity_declarations(body, url=url)
    fast = _read_fast(body, url=url, content_type=content_type)
    if fast is not None:
        return fast
    return _read_reference(body, url=url, content_type=content_type)


def parse_feed_fast(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed | None:
    """The fast path alone: a ParsedFeed, or None when the document must go to feedparser."""
    refuse_entity_declarations(body, url=url)
    return _read_fast(body, url=url, content_type=content_type)


def parse_feed_reference(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """The reference path alone: feedparser, whatever the document."""
    refuse_entity_declarations(body, url=url)
    return _read_reference(body, url=url, content_type=content_type)


def _read_fast(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed | None:
    root = parse_well_formed(body)
    if root is None or not _same_encoding(root, body, content_type):
        return None
    try:
        document = read_document(root, html_names=_HTML_NAMES, parse_date=_feedparser_date)
    except Declined:
        return None
    return _build_feed(document.version, document.feed, document.entries, url=url, parser=FAST)


def _same_encoding(root: Any, body: bytes, content_type: str | None) -> bool:
    # feedparser lets a charset in the Content-Type override the document's own declaration, and
    # reads text/* without one as US-ASCII (RFC 3023); lxml always follows the document.
    if not content_type:
        return True
    media_type, _, params = content_type.partition(";")
    charset = next(
        (p.split("=", 1)[1].strip(" \"'") for p in params.split(";") if "charset=" in p.lower()),
        None,
    )
    if charset is None:
        return not media_type.strip().lower().startswith("text/") or body.isascii()
    declared = root.getroottree().docinfo.encoding or "utf-8"
    try:
        return codecs.lookup(charset).name == codecs.lookup(declared).name
    except LookupError:
        return False


def _read_reference(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    # No content-location: feedparser would resolve a guid such as "42" against it, and then a
    # guid standing in for a link could not be told from a real link. We resolve links ourselves.
    headers = {"content-type": content_type} if content_type else {}
    # We keep text only (html_to_text), so feedparser's HTML sanitiser and its rewriting of
    # links inside HTML are wasted work: together about 70 % of its time on real news feeds.
    document = feedparser.parse(
        body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    warning = _bozo_message(document, body)
    if not document.get("version") and not document.entries:
        reason = warning or "no RSS, Atom or RDF document found"
        if _looks_like_html(body):
            reason = "an HTML page, not a feed"
        raise ParseError(url, f"not a feed ({reason})")
    version = str(document.get("version") or "")
    return _build_feed(version, document.feed, document.entries, url=url, warning=warning)


def _build_feed(
    version: str,
    meta: Any,
    entries: list[Any],
    *,
    url: str,
    warning: str | None = None,
    parser: str = REFERENCE,
) -> ParsedFeed:
    # meta and entries are feedparser's dictionaries, or the fast path's of the same shape.
    language = str(meta.get("language") or "")
    title = _detail_text(meta.get("title", ""), meta.get("title_detail"))
    return ParsedFeed(
        title=_one_line(strip_controls(title)),
        site_url=web_url(urljoin(url, str(meta.get("link") or ""))) if meta.get("link") else "",
        language=language,
        version=version,
        entries=[_to_entry(entry, url, language) for entry in entries],
        warning=warning,
        ttl=_optional(meta.get("ttl")),
        update_period=_optional(meta.get("sy_updateperiod")),
        update_frequency=_optional(meta.get("sy_updatefrequency")),
        parser=parser,
    )


def refuse_entity_declarations(body: bytes, *, url: str) -> None:
    """Raise ParseError when the document's DOCTYPE declares entities.

    feedparser's loose parser expands declared entities itself: one large entity repeated a few
    thousand times becomes hundreds of MB (an "entity bomb"). No real feed needs to declare
    entities, so such a document is refused before any parser sees it. External entities are
    never fetched either way: nothing here loads a DTD.
    """
    subset = _doctype(_prolog_text(body))
    if subset is not None and "<!ENTITY" in subset:
        raise ParseError(url, "not a feed (its DOCTYPE declares XML entities, which are refused)")


def _prolog_text(body: bytes) -> str:
    # Only UTF-16 and UTF-32 hide ASCII markup from a byte search; latin-1 maps every other
    # (ASCII-compatible) encoding's markup characters one to one.
    head = body[:4]
    for bom, codec in _WIDE_ENCODINGS:
        if head.startswith(bom):
            return body.decode(codec, errors="replace")
    if len(head) == 4 and head.count(0) >= 2:
        codec = (
            "utf-32-le"
            if head[1:4] == b"\0\0\0"
            else "utf-32-be"
            if head[:3] == b"\0\0\0"
            else ("utf-16-le" if head[1] == 0 else "utf-16-be")
        )
        return body.decode(codec, errors="replace")
    return body.decode("latin-1")


_WIDE_ENCODINGS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def _doctype(text: str) -> str | None:
    """The DOCTYPE declaration of an XML prolog, internal subset included (None if none)."""
    position = 1 if text.startswith("\ufeff") else 0
    while True:
        item = _PROLOG_ITEM.match(text, position)
        if item is None or item.end() == position:
            break
        position = item.end()
    if not text.startswith("<!DOCTYPE", position):
        return None
    # The declaration ends at the first ">" outside its [internal subset].
    bracket = text.find("[", position)
    close = text.find(">", position)
    if bracket != -1 and (close == -1 or bracket < close):
        end = text.find("]", bracket)
        return text[position : len(text) if end == -1 else end + 1]
    return text[position : len(text) if close == -1 else close + 1]


def _bozo_message(document: Any, body: bytes) -> str | None:
    if not document.get("bozo"):
        return None
    exc = document.get("bozo_exception")
    # A declared/actual encoding mismatch, or a missing or non-XML Content-Type, is routine and
    # says nothing about the document; a document that is also malformed reports that instead.
    if isinstance(exc, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType):
        return None
    return _one_line(_error_text(exc, body)) if exc else "malformed document"


def _error_text(exc: BaseException, body: bytes) -> str:
    """An XML error as people read it: ``line 3, column 1: junk after document element``.

    feedparser's SAX errors name no document, so they print as ``<unknown>:3:0: ...``; and
    feedparser puts an XML declaration line before a document that has none, so its line
    numbers are one too high for those.
    """
    if isinstance(exc, SAXParseException):
        line, column = exc.getLineNumber(), exc.getColumnNumber()
        if not isinstance(line, int) or not isinstance(column, int) or line < 1:
            return str(exc.getMessage())
        head = _prolog_text(body[:200].removeprefix(b"\xef\xbb\xbf")).lstrip("\ufeff")
        if line > 1 and not _XML_DECLARATION.match(head):
            line -= 1
        return f"line {line}, column {column + 1}: {exc.getMessage()}"
    return _UNKNOWN_PLACE.sub(
        lambda m: f"line {m.group(1)}, column {int(m.group(2)) + 1}: ", str(exc)
    ).replace("<unknown>", "the document")


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return True
    # Servers' own pages often have no <html> at all: IIS's "Document Moved" begins with <head>.
    first = _FIRST_TAG.search(head)
    return first is not None and first.group(1).decode("ascii") in _HTML_PAGE_ELEMENTS


def parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    """Parse a JSON Feed (https://jsonfeed.org, versions 1.0 and 1.1)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(url, f"not a feed (JSON that does not parse: {exc})") from None
    if not isinstance(document, dict) or "jsonfeed.org" not in str(document.get("version", "")):
        raise ParseError(url, "not a feed (JSON, but not a JSON Feed)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "not a feed (a JSON Feed needs an items list)")
    language = _text_field(document, "language")
    return ParsedFeed(
        title=_one_line(strip_controls(_text_field(document, "title"))),
        site_url=web_url(_text_field(document, "home_page_url")),
        language=language,
        version="json" + str(document["version"]).rstrip("/").rsplit("/", 1)[-1],
        entries=[_json_entry(item, url, language) for item in items if isinstance(item, dict)],
        parser=JSON,
    )


def _json_entry(item: dict[str, Any], feed_url: str, language: str) -> ParsedEntry:
    link = _text_field(item, "url") or _text_field(item, "external_url")
    content = _text_field(item, "content_html")
    authors = item.get("authors") or (
        [item["author"]] if isinstance(item.get("author"), dict) else []
    )
    names = [str(a.get("name", "")) for a in authors if isinstance(a, dict) and a.get("name")]
    return _safe_entry(
        guid=_optional(item.get("id")),
        link=urljoin(feed_url, link) if link else None,
        title=html_to_text(_text_field(item, "title")),
        summary=_plain_text(_text_field(item, "summary")),
        content=html_to_text(content)
        if content
        else _plain_text(_text_field(item, "content_text")),
        author=_one_line(", ".join(names)),
        published_at=_iso_utc(item.get("date_published")) or _iso_utc(item.get("date_modified")),
        updated_at=_iso_utc(item.get("date_modified")),
        language=_text_field(item, "language") or language,
    )


def _plain_text(text: str) -> str:
    # A JSON Feed's plain-text fields are sometimes HTML as well (as Atom's type="text").
    return html_to_text(text) if _is_markup(text) else _tidy(text)


def _text_field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _iso_utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # RFC 3339 requires an offset; a feed that omits it most likely means UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
