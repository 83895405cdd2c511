"""Extract an article's body and metadata from the bytes of its page; no I/O, no database.

The chain: refuse what is not HTML (by type and by its first bytes), decode (the header's
charset, a BOM, the page's own ``<meta charset>``, UTF-8, then detection), read the page's
metadata (canonical link, language, dates, author), then trafilatura tuned for precision; its
result is walked here block by block so that what sits inside an article but is not the article
(lists of other headlines, "Read more:" links, newsletter and follow-us lines, bare links) is
left out. When trafilatura finds nothing long enough, readability-lxml tries. A page whose text
reads as a cookie-consent or paywall notice is refused as such. ``benchmarks/extract.py``
measures each part against the hand-marked bodies of ``../shared/articles``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]  # no stubs installed
from charset_normalizer import from_bytes
from lxml import etree

from monitor.errors import ExtractError

TRAFILATURA = "trafilatura"
READABILITY = "readability"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
# Types a server sends when it does not know: the bytes decide.
VAGUE_TYPES = frozenset({"", "application/octet-stream", "text/plain", "binary/octet-stream"})
# What the first bytes of a page say it really is, when it is not HTML at all.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (an office document?)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file"),
    (b"\x1aE\xdf\xa3", "a WebM or Matroska video"),
)
# The WHATWG encoding standard reads these labels as windows-1252, as browsers do.
_WINDOWS_1252 = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"})
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE
)
# Block elements of trafilatura's output (p, head, list, item, quote, row, cell) and of HTML
# (what readability-lxml returns): each starts a line of its own.
_BLOCKS = frozenset(
    {
        *("p", "div", "head", "list", "item", "quote", "table", "row", "cell", "pre", "code"),
        *("section", "article", "main", "aside", "header", "footer", "blockquote", "figure"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "tr", "td"),
        *("th", "figcaption", "caption", "details", "summary"),
    }
)
# Comments and processing instructions dropped while parsing: a page's markup comments (React
# leaves them inside sentences) cut trafilatura's paragraphs short.
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)
_ROWS = frozenset({"row", "tr"})
_CELLS = frozenset({"cell", "td", "th"})
_BREAKS = frozenset({"lb", "br"})
_LINKS = frozenset({"ref", "a"})
_SKIPPED = frozenset({"graphic", "img", "script", "style", "noscript", "template", "svg", "iframe"})
# A block this much made of link text, holding several links or reading as a headline (one
# link, capitalised, no closing punctuation, short), lists other pages: not the article's prose.
# A whole sentence that is a link (a deals page's items) stays.
LINK_DENSITY = 0.8
HEADLINE_MAX_CHARS = 120
_SENTENCE_END = re.compile(r"[.!?\u2026:;\"\u201d\u2019\u00bb)]\s*$")
# "Read more:", "Related:", "DON'T MISS" and their kin, at the start of a short block.
_LABEL = re.compile(
    r"^\W*(?:read\s+(?:more|also|next)|also\s+read|more\s+(?:on\s+this(?:\s+story)?|from|"
    r"stories|news|coverage|to\s+read)|related(?:\s+(?:articles?|stories|coverage|content|"
    r"news|links|reading|topics))?|see\s+also|don[\u2019']?t\s+miss|must\s+read|recommended"
    r"(?:\s+for\s+you)?|you\s+(?:may|might)\s+(?:also\s+)?like|trending(?:\s+now)?|"
    r"popular(?:\s+now)?|most\s+(?:read|popular)|top\s+stories|editor[\u2019']?s\s+picks?|"
    r"advertisement|sponsored(?:\s+content)?|читайте\s+также|читайте\s+по\s+теме|по\s+теме|"
    r"смотрите\s+также|подробнее|реклама|lesen\s+sie\s+(?:auch|mehr)|mehr\s+zum\s+thema|"
    r"anzeige|(?:à\s+)?lire\s+aussi|voir\s+aussi|lee\s+también|te\s+puede\s+interesar|"
    r"leggi\s+anche)\b[ \t]*(?:[:.!|>»\-\u2013\u2014\n]|$)",
    re.IGNORECASE,
)
LABEL_MAX_CHARS = 300
# Promotional lines: newsletters, follow-us, sharing, copyright; only in short blocks.
_PROMO = re.compile(
    r"\bnewsletters?\b|\b(?:sign\s+up|subscribe)\s+(?:for|to)\s+(?:our|the)\b.{0,40}\b(?:e-?mails?|"
    r"alerts|updates|podcast|channel)\b|"
    r"^\W*follow\s+(?:[\w@'\u2019.&-]+\s+){0,6}on\s+(?:twitter|facebook|instagram|youtube|tiktok|"
    r"telegram|linkedin|x|threads|bluesky)\b|\ball\s+rights\s+reserved\b|^\W*(?:©|copyright\b)|"
    r"\bclick\s+here\s+to\b|^\W*share\s+(?:this|on)\b|подпишитесь|подписывайтесь",
    re.IGNORECASE,
)
PROMO_MAX_CHARS = 160
# A block that is a bare address, perhaps after a short label ("Listen: https://...").
_BARE_LINK = re.compile(r"^\s*(?:[\w\u2019' ]{1,30}:\s*)?(?:https?://|www\.)\S+\s*$", re.IGNORECASE)
# Words of cookie-consent and paywall notices; a short text holding several is one of them.
_WALL = re.compile(
    r"\b(cookies?|consent|personal\s+data|privacy\s+(?:settings|policy|preferences)|"
    r"accept\s+all|reject\s+all|manage\s+(?:options|preferences|cookies)|our\s+partners|"
    r"legitimate\s+interest|subscribe\s+to\s+(?:continue|read|keep)|subscribers?\s+only|"
    r"already\s+a\s+subscriber|(?:log|sign)\s+in\s+to\s+(?:continue|read)|paywall|"
    r"to\s+continue\s+reading|create\s+a\s+free\s+account|einwilligung|datenschutz|"
    r"zustimmen|consentement|accepter|согласие|персональных\s+данных|cookie-файл\w*)",
    re.IGNORECASE,
)
WALL_TERMS = 3
WALL_MAX_CHARS = 2500
_CONSENT_HOSTS = re.compile(r"^(?:consent|guce|privacy|cmp)\.|consent", re.IGNORECASE)
_DATE_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
)


@dataclass(frozen=True, slots=True)
class ExtractRules:
    """How a page's body is extracted; the defaults are the measured choice."""

    min_chars: int = 200
    max_chars: int = 100_000
    # Leave out link lists, "Read more:" lines, promotions and bare links (see the module doc).
    clean: bool = True
    # readability-lxml when trafilatura finds less than min_chars.
    fallback: bool = True
    # trafilatura's precision-oriented settings.
    favor_precision: bool = True


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page says of itself in its markup."""

    canonical_url: str | None = None
    language: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """A page's article text, the extractor that found it, and the page's metadata."""

    text: str
    method: str
    title: str = ""
    author: str = ""
    published_at: datetime | None = None
    language: str = ""
    canonical_url: str | None = None
    description: str = ""
    site_name: str = ""

    def payload(self) -> dict[str, Any]:
        """JSON-ready data (times in ISO 8601, UTC)."""
        data = asdict(self)
        when = self.published_at
        data["published_at"] = when.isoformat().replace("+00:00", "Z") if when else None
        return data


@dataclass(slots=True)
class _Block:
    """One block of extracted text: its words and how many of its characters are links."""

    parts: list[str] = field(default_factory=list)
    link_chars: int = 0
    links: int = 0

    def text(self) -> str:
        lines = "".join(self.parts).split("\n")
        return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-cased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, if any."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip("\"'"):
            return value.strip().strip("\"'")
    return None


def check_html(body: bytes, content_type: str | None, *, url: str = "") -> None:
    """Raise ExtractError unless ``body`` is an HTML page, by its type and its first bytes."""
    head = body[:64].lstrip()
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ExtractError(url, f"not an HTML page: {what}")
    kind = media_type(content_type)
    if kind in HTML_TYPES:
        return
    if kind in VAGUE_TYPES:
        start = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if start.startswith((b"<!doctype html", b"<html", b"<head", b"<meta", b"<!--", b"<body")):
            return
    raise ExtractError(url, f"not an HTML page: {kind or 'no Content-Type'}")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    if label in _WINDOWS_1252:
        return "cp1252"
    try:
        name: str = codecs.lookup(label).name
    except LookupError:
        return None
    return name


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """The page as text: its header's charset, a BOM, its own meta charset, UTF-8, or a guess."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace")
    declared = _codec(header_charset(content_type))
    if declared is None:
        found = _META_CHARSET.search(body[:4096])
        declared = _codec(found.group(1).decode("ascii", "replace")) if found else None
    if declared is not None and not declared.startswith("utf-16"):
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Neither header nor page says: detection on both ends of the page (as trafilatura does).
    sample = body if len(body) < 20_000 else body[:10_000] + body[-10_000:]
    best = from_bytes(sample).best()
    encoding = _codec(best.encoding) if best is not None else None
    return body.decode(encoding or "utf-8", errors="replace")


def parse_html(text: str, *, url: str = "") -> lxml.html.HtmlElement:
    """The page's tree; libxml2 stops nesting at 255 levels, so a hostile tree stays small."""
    # An XML declaration with an encoding makes lxml refuse a str; it is no longer true anyway.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text, count=1)
    try:
        tree = lxml.html.document_fromstring(text, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractError(url, f"not readable as HTML: {exc}") from None
    return tree


def page_meta(tree: lxml.html.HtmlElement, *, url: str) -> PageMeta:
    """The canonical link, language and publication time the page's markup declares."""
    return PageMeta(
        canonical_url=_canonical(tree, url),
        language=_language(tree),
        published_at=_published(tree),
    )


def _canonical(tree: lxml.html.HtmlElement, url: str) -> str | None:
    candidates = [
        link.get("href", "")
        for link in tree.iter("link")
        if "canonical" in (link.get("rel") or "").lower().split()
    ]
    candidates += [
        meta.get("content", "")
        for meta in tree.iter("meta")
        if (meta.get("property") or meta.get("name") or "").lower() == "og:url"
    ]
    for candidate in candidates:
        text = str(candidate).strip()
        absolute = urljoin(url, text) if url else text
        parts = urlsplit(absolute)
        if parts.scheme in ("http", "https") and parts.hostname:
            return absolute
    return None


def _language(tree: lxml.html.HtmlElement) -> str:
    values = [tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang") or ""]
    for meta in tree.iter("meta"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").lower()
        if key in ("content-language", "og:locale", "language", "dc.language"):
            values.append(meta.get("content") or "")
    for value in values:
        code = value.split(",")[0].strip().replace("_", "-")
        if re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", code):
            return code[:35]
    return ""


def _published(tree: lxml.html.HtmlElement) -> datetime | None:
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _DATE_META:
            found = parse_time(meta.get("content"))
            if found is not None:
                return found
    for script in tree.iter("script"):
        if (script.get("type") or "").lower() == "application/ld+json":
            found = _json_ld_date(script.text or "")
            if found is not None:
                return found
    for element in tree.iter("time"):
        if (element.get("itemprop") or "").lower() == "datepublished":
            found = parse_time(element.get("datetime"))
            if found is not None:
                return found
    return None


def _json_ld_date(text: str) -> datetime | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    for item in _json_items(data):
        found = parse_time(item.get("datePublished"))
        if found is not None:
            return found
    return None


def _json_items(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _json_items(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        yield from _json_items(data.get("@graph"), depth + 1)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (or date) as an aware UTC datetime; a time without zone is UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not 1990 <= when.year <= 2100:
        return None
    return when.astimezone(UTC)


def blocks_of(root: etree._Element) -> list[_Block]:
    """The text blocks under ``root``, in order: paragraphs, headings, list items, table rows."""
    blocks: list[_Block] = []
    current = _Block()

    def close() -> None:
        nonlocal current
        if "".join(current.parts).strip():
            blocks.append(current)
        current = _Block()

    def walk(element: etree._Element, in_link: bool) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.rsplit("}", 1)[-1].lower()
        if tag in _SKIPPED or not tag:
            return
        block = tag in _BLOCKS and tag not in _CELLS
        if block:
            close()
        if tag in _BREAKS:
            current.parts.append("\n")
        link = in_link or tag in _LINKS
        if tag in _LINKS and not in_link:
            current.links += 1
        if element.text:
            _add(current, element.text, link)
        for child in element:
            walk(child, link)
            if child.tail:
                _add(current, child.tail, link)
        if tag in _CELLS:
            current.parts.append(" ")
        if block or tag in _ROWS:
            close()

    walk(root, False)
    close()
    return blocks


def _add(block: _Block, text: str, link: bool) -> None:
    block.parts.append(text)
    if link:
        block.link_chars += len(text.strip())


def is_boilerplate(block: _Block, text: str) -> bool:
    """Whether a block is not the article's prose: a link list, a label line, a promotion."""
    size = len(text)
    if size and block.link_chars / size >= LINK_DENSITY and _lists_links(block, text):
        return True
    if size <= LABEL_MAX_CHARS and _LABEL.match(text):
        return True
    return size <= PROMO_MAX_CHARS and _PROMO.search(text) is not None


def _lists_links(block: _Block, text: str) -> bool:
    if block.links >= 2:
        return True
    capitalised = text[:1].isupper() or text[:1].isdigit()
    return len(text) <= HEADLINE_MAX_CHARS and capitalised and not _SENTENCE_END.search(text)


def text_of(root: etree._Element, *, clean: bool, max_chars: int) -> str:
    """The article text under ``root``: blocks separated by blank lines, boilerplate left out,
    cut at a block boundary to at most ``max_chars`` characters."""
    kept: list[str] = []
    size = 0
    for block in blocks_of(root):
        text = block.text()
        if clean:
            # A line of its own that is a bare address ("Listen: https://...") says nothing.
            text = "\n".join(line for line in text.split("\n") if not _BARE_LINK.match(line))
            if is_boilerplate(block, text):
                continue
        if not text:
            continue
        if size + len(text) > max_chars:
            if not kept:
                kept.append(text[:max_chars])
            break
        kept.append(text)
        size += len(text) + 2
    return "\n\n".join(kept)


def looks_like_wall(text: str) -> bool:
    """Whether a short text reads as a cookie-consent or paywall notice."""
    if len(text) > WALL_MAX_CHARS:
        return False
    terms = {match.group(1).lower().split()[0] for match in _WALL.finditer(text)}
    return len(terms) >= WALL_TERMS


def _trafilatura(
    tree: lxml.html.HtmlElement, url: str, rules: ExtractRules
) -> tuple[str, dict[str, str]]:
    # Imported here: the CLI's other commands and the feed workers never pay for it.
    from trafilatura import bare_extraction

    document = bare_extraction(
        tree,
        url=url or None,
        favor_precision=rules.favor_precision,
        include_comments=False,
        include_tables=True,
        include_links=True,
        with_metadata=True,
    )
    if document is None:
        return "", {}
    body = getattr(document, "body", None)
    text = "" if body is None else text_of(body, clean=rules.clean, max_chars=rules.max_chars)
    meta = {
        name: str(getattr(document, name, None) or "")
        for name in ("title", "author", "date", "description", "sitename")
    }
    return text, meta


def _readability(html: str, rules: ExtractRules) -> tuple[str, str]:
    from readability import Document  # type: ignore[import-untyped]  # no stubs

    document = Document(html)
    summary = document.summary(html_partial=True)
    if not summary.strip():
        return "", ""
    fragment = lxml.html.fragment_fromstring(summary, create_parent="div")
    return text_of(fragment, clean=rules.clean, max_chars=rules.max_chars), document.short_title()


def extract_page(
    body: bytes,
    *,
    url: str = "",
    content_type: str | None = None,
    rules: ExtractRules | None = None,
) -> ExtractedPage:
    """The article text and metadata of a page; raise ExtractError when it has none to give."""
    rules = rules or ExtractRules()
    check_html(body, content_type, url=url)
    html = decode_html(body, content_type)
    tree = parse_html(html, url=url)
    meta = page_meta(tree, url=url)
    text, found = _trafilatura(tree, url, rules)
    method, title = TRAFILATURA, found.get("title", "")
    if len(text) < rules.min_chars and rules.fallback:
        fallback, fallback_title = _readability(html, rules)
        if len(fallback) > len(text):
            text, method, title = fallback, READABILITY, title or fallback_title
    wall = looks_like_wall(text) or (
        len(text) < rules.min_chars and looks_like_wall(tree.text_content()[:WALL_MAX_CHARS])
    )
    if wall or (url and _CONSENT_HOSTS.search(urlsplit(url).hostname or "")):
        raise ExtractError(url, "a cookie-consent or paywall page, not the article")
    if len(text) < rules.min_chars:
        raise ExtractError(
            url, f"too little article text ({len(text)} characters; at least {rules.min_chars})"
        )
    published = meta.published_at or parse_time(found.get("date"))
    return ExtractedPage(
        text=text,
        method=method,
        title=" ".join(title.split()),
        author=" ".join(found.get("author", "").split()),
        published_at=published,
        language=meta.language,
        canonical_url=meta.canonical_url,
        description=" ".join(found.get("description", "").split()),
        site_name=" ".join(found.get("sitename", "").split()),
    )
