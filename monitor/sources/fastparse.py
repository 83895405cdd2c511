"""The fast parse path: a well-formed RSS, RDF or Atom document read with lxml, as feedparser would.

read_document() returns feedparser-shaped dictionaries (only the keys parse.py reads), so one
conversion in parse.py serves both paths and feedparser stays the reference. It follows
feedparser's rules for those keys (which element wins, when a guid is a link, when plain text is
really HTML, its cp1252 and double-encoded UTF-8 repairs) and raises Declined on anything it does
not model, so such a document goes to feedparser instead. fastfeedparser was measured too: it is
faster still, but it loses the text/HTML type of titles and summaries and reads a guid such as "42"
as a date, so the values could not match feedparser's.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.entities import entitydefs
from typing import Any
from urllib.parse import urljoin
from xml.sax.saxutils import escape

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

DateParser = Callable[[str], time.struct_time | None]


class Declined(Exception):  # noqa: N818 (a verdict, not an error)
    """The fast path cannot promise feedparser's reading of this document."""


@dataclass(slots=True)
class FastDocument:
    """What the fast path read: feedparser's ``version``, ``feed`` and ``entries``."""

    version: str
    feed: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)


class _Parsers(threading.local):
    # Strict and safe: no entity expansion, no DTD, no network, no huge trees; one per thread.
    def __init__(self) -> None:
        self.xml = etree.XMLParser(
            recover=False,
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )


_PARSERS = _Parsers()

_ATOM10 = "http://www.w3.org/2005/Atom"
_ATOM03 = "http://purl.org/atom/ns#"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RSS10 = "http://purl.org/rss/1.0/"
_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XML_BASES = etree.XPath("//@xml:base | //@base")
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# feedparser's prefixes for the namespaces whose elements reach our fields; any other namespace
# keeps the prefix the document gives it. The first group are the formats' own (no prefix).
_PREFIXES = {
    _ATOM10.lower(): "",
    _ATOM03: "",
    _RSS10: "",
    _RSS090: "",
    "http://backend.userland.com/rss": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://search.yahoo.com/mrss/": "media",
    "http://search.yahoo.com/mrss": "media",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://www.w3.org/1999/xhtml": "xhtml",
    _RDF: "rdf",
}
_TITLES = frozenset({"title", "dc_title", "media_title"})
_DESCRIPTIONS = {"description": "text/html", "dc_description": "text/html"}
_DESCRIPTIONS |= {"media_description": "text/html", "abstract": "text/plain"}
_SUMMARIES = frozenset({"summary", "itunes_summary"})
_CONTENTS = {"content": "text/plain", "content_encoded": "text/html", "fullitem": "text/html"}
_AUTHORS = frozenset({"author", "dc_creator", "dc_author", "itunes_author", "managingeditor"})
_AUTHOR_PARTS = {"name": "name", "itunes_name": "name", "email": "email", "itunes_email": "email"}
_AUTHOR_PARTS |= {"uri": "href", "url": "href", "homepage": "href"}
_PUBLISHED = frozenset({"published", "pubdate", "issued", "dcterms_issued"})
_UPDATED = frozenset({"updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"})
_LANGUAGES = frozenset({"language", "dc_language"})
_ORIGINAL_LINKS = frozenset({"feedburner_origlink", "pheedo_origlink"})
_FEED_HINTS = frozenset({"ttl", "sy_updateperiod", "sy_updatefrequency"})
# Elements whose text feedparser treats as markup of its own; child elements inside them are
# rebuilt as XHTML, which only Atom's type="xhtml" content is read for here.
_OTHER_TEXT_ELEMENTS = frozenset(
    {"subtitle", "tagline", "rights", "copyright", "info", "itunes_subtitle", "dc_rights"}
)
# Inside an entry these switch feedparser to another context (an image, a text input) or nest
# another entry: never in ordinary feeds, so not modelled.
_ENTRY_DECLINED = frozenset(
    {"item", "entry", "channel", "feed", "image", "textinput", "body", "xhtml_body"}
)
# Every name read above: inside an author, any other element (Blogger's gd:image) is inert.
_HANDLED = (
    _TITLES | set(_DESCRIPTIONS) | _SUMMARIES | set(_CONTENTS) | _AUTHORS | _PUBLISHED | _UPDATED
)
_HANDLED |= _LANGUAGES | _ORIGINAL_LINKS | _ENTRY_DECLINED | _OTHER_TEXT_ELEMENTS
_HANDLED |= {"link", "id", "guid", "enclosure", "contributor", "source"}
# An element without attributes that the reader does not know is stored under its own name;
# under these names it would overwrite what parse.py reads.
_RESERVED_KEYS = frozenset(
    {"links", "guidislink", "title_detail", "summary_detail", "published_parsed"}
    | {"updated_parsed", "href"}
)
# feedparser leaves an image (or text input) as soon as an element outside these opens in it,
# and what follows lands on the feed.
_IMAGE_PARTS = frozenset({"title", "link", "description", "url", "href", "width", "height"})
_TEXTINPUT_PARTS = frozenset({"title", "link", "description", "name"})
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_SUMMARY_FROM_CONTENT_TYPES = _HTML_TYPES | {"text/plain"}
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_END_TAG = re.compile(r"</(\w+)>")
_ENTITY = re.compile(r"&#?\w+;")
_TAG_NAME = re.compile(r"</?(\w+)")
_NAMED_ENTITY = re.compile(r"&(\w+);")
_LINK_ENTITY = re.compile(r"&([A-Za-z0-9_]+);")
# Bytes 0x80-0x9f read as Latin-1 are almost always Windows-1252 punctuation: feedparser maps them.
_CP1252 = {
    code: bytes([code]).decode("cp1252")
    for code in range(0x80, 0xA0)
    if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_C1_CONTROLS = re.compile("[\x80-\x9f]")


def parse_well_formed(body: bytes) -> etree._Element | None:
    """The root of a well-formed XML document without a DOCTYPE; None for anything else."""
    try:
        root = etree.fromstring(body, _PARSERS.xml)
    except (etree.XMLSyntaxError, ValueError, LookupError):
        return None
    # A DOCTYPE can name entities that were left unexpanded, and marks RSS 0.91 Netscape.
    if root is None or root.getroottree().docinfo.doctype:
        return None
    return root


def read_document(
    root: etree._Element,
    *,
    html_names: frozenset[str],
    parse_date: DateParser,
) -> FastDocument:
    """feedparser's reading of a well-formed feed document, or Declined."""
    return _Reader(_version(root), html_names, parse_date).read(root)


def _version(root: etree._Element) -> str:
    tag = root.tag
    namespaces = {str(uri).lower() for uri in root.nsmap.values()}
    if tag == "rss":
        if namespaces & {_RSS10, _RSS090}:
            raise Declined("an RSS 2.0 root in the RSS 1.0 namespace")
        declared = str(root.get("version", ""))
        versions = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
        return versions.get(declared) or ("rss20" if declared.startswith("2.") else "rss")
    if tag == f"{{{_ATOM10}}}feed":
        return "atom10"
    if tag == f"{{{_ATOM03}}}feed":
        if _ATOM10.lower() in namespaces:
            raise Declined("Atom 0.3 beside the Atom 1.0 namespace")
        versions = {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}
        return versions.get(str(root.get("version", "")), "atom")
    if tag == f"{{{_RDF}}}RDF" and root.nsmap.get(None) in (_RSS10, _RSS090):
        if _ATOM10.lower() in namespaces:
            raise Declined("RDF beside the Atom 1.0 namespace")
        return "rss10" if root.nsmap.get(None) == _RSS10 else "rss090"
    raise Declined(f"unknown root element {tag!r}")


def _name(element: etree._Element) -> str:
    """feedparser's name for an element: its namespace's prefix, "_", its lower-case name."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    if tag[0] != "{":
        return tag.lower()
    namespace, _, local = tag[1:].partition("}")
    prefix = _PREFIXES.get(namespace.lower())
    if prefix is None:
        prefix = element.prefix or ""
    return f"{prefix}_{local.lower()}" if prefix else local.lower()


def _attributes(element: etree._Element) -> dict[str, str]:
    # feedparser lower-cases every attribute name, and the values of rel and type.
    result = {}
    for key, value in element.attrib.items():
        name = str(key).rpartition("}")[2].lower()
        result[name] = str(value).lower() if name in ("rel", "type") else str(value)
    return result


def _content_type(kind: str) -> str:
    kind = kind.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html"}.get(
        kind, "application/xhtml+xml" if kind == "xhtml" else kind
    )


def _urljoin(base: str, uri: str) -> str:
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def _has_children(element: etree._Element) -> bool:
    return len(element) > 0


def _xhtml_markup(element: etree._Element) -> str:
    """An element's content as feedparser rebuilds XHTML: local names, text escaped."""
    parts = [escape(element.text or "")]
    for child in element:
        name = str(child.tag).rpartition("}")[2].lower()
        parts.append(f"<{name}>{_xhtml_markup(child)}</{name}>{escape(child.tail or '')}")
    return "".join(parts)


def _bases(root: etree._Element) -> dict[etree._Element, str]:
    """Each element's base URI as feedparser tracks it; empty when no xml:base is used.

    feedparser keeps an element's xml:base after the element ends unless the parent had a base
    of its own, so a base set on one entry's content applies to the entries after it. This walk
    repeats that. Only absolute http(s) bases are followed; feedparser's scheme checks on any
    other kind are not modelled.
    """
    values = [str(value) for value in _XML_BASES(root)]
    if not values:
        return {}
    if any(not value.lower().startswith(("http://", "https://")) for value in values):
        raise Declined("an xml:base that is not an absolute web URL")
    if root.xpath("boolean(//@base)"):
        raise Declined("a plain base attribute, which feedparser reads as xml:base")
    base = ""
    stack: list[str] = []
    bases: dict[etree._Element, str] = {}
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            base = _urljoin(base, element.get(_XML_BASE) or base) or base
            stack.append(base)
            bases[element] = base
        else:
            stack.pop()
            if stack and stack[-1]:
                base = stack[-1]
    return bases


class _Reader:
    """One document's walk, keeping the state feedparser keeps between elements."""

    def __init__(self, version: str, html_names: frozenset[str], parse_date: DateParser) -> None:
        self.version = version
        self.html_names = html_names
        self.parse_date = parse_date
        self.title_depth = -1

    def read(self, root: etree._Element) -> FastDocument:
        self.bases = _bases(root)
        document = FastDocument(self.version)
        language = root.get(_XML_LANG) or root.get("lang")
        # feedparser reads xml:lang on <rss> and <feed>, never on <rdf:RDF>.
        if language and root.tag != f"{{{_RDF}}}RDF":
            document.feed["language"] = language.replace("_", "-")
        if root.tag == "rss":
            channels = list(root)
            if len(channels) != 1 or _name(channels[0]) != "channel":
                raise Declined("an RSS root that holds more than one channel")
            self.read_channel(channels[0], document, depth=3)
        elif root.tag == f"{{{_RDF}}}RDF":
            self.read_channel(root, document, depth=2, rdf=True)
        else:
            self.read_channel(root, document, depth=2)
        return document

    def read_channel(
        self, channel: etree._Element, document: FastDocument, *, depth: int, rdf: bool = False
    ) -> None:
        feed = document.feed
        for child in channel:
            name = _name(child)
            if name in ("item", "entry"):
                document.entries.append(self.read_entry(child, depth))
            elif rdf and name == "channel":
                self.read_channel(child, document, depth=depth + 1)
            elif name in _TITLES:
                value, detail = self.text_field(child, "text/plain")
                if not -1 < self.title_depth <= depth:
                    feed["title"], feed["title_detail"] = value, detail
                if value and name != "media_title":
                    self.title_depth = depth
            elif name == "link":
                self.feed_link(child, feed)
            elif name in ("id", "guid"):
                is_link = _attributes(child).get("ispermalink", "true") == "true"
                value = self.simple_text(child, uri=is_link)
                if is_link:
                    feed.setdefault("link", value)
            elif name in _LANGUAGES:
                feed["language"] = self.simple_text(child)
            elif name in _FEED_HINTS:
                if child.attrib:
                    raise Declined(f"{name} with attributes, kept by feedparser as a dict")
                feed[name] = self.simple_text(child)
            elif name in ("image", "textinput"):
                self.skip_image(child, depth, _IMAGE_PARTS if name == "image" else _TEXTINPUT_PARTS)
            elif _has_children(child) and name not in _AUTHORS and name != "contributor":
                names = {_name(d) for d in child.iterdescendants()}
                if names & ({"item", "entry", "link", "channel"} | _TITLES | _LANGUAGES):
                    raise Declined(f"feed-level {name} holds feed elements")

    def skip_image(self, image: etree._Element, depth: int, parts: frozenset[str]) -> None:
        """Step over a channel's image or text input, keeping feedparser's title depth."""
        names = [_name(child) for child in image]
        if any(name not in parts and "_" not in name for name in names):
            raise Declined("an image or text input holding other elements")
        titles = [c for c in image if _name(c) == "title" and (c.text or "").strip()]
        # feedparser forgets the feed title's depth here, and a non-empty image title sets it.
        self.title_depth = depth + 1 if titles else -1

    def feed_link(self, element: etree._Element, feed: dict[str, Any]) -> None:
        attributes = _attributes(element)
        href = attributes.get("url") or attributes.get("uri") or attributes.get("href")
        if href:
            rel = attributes.get("rel", "alternate")
            kind = attributes.get("type", "application/atom+xml" if rel == "self" else "text/html")
            if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
                feed["link"] = _urljoin(self.base(element), href)
        else:
            feed["link"] = _LINK_ENTITY.sub(r"&\1", self.simple_text(element, uri=True))

    def read_entry(self, item: etree._Element, depth: int) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if item.get(f"{{{_RDF}}}about"):
            entry["id"] = item.get(f"{{{_RDF}}}about")
        if {"lastmod", "href"} & set(_attributes(item)):
            raise Declined("CDF attributes on an item")
        self.title_depth = -1
        self.has_content = False
        self.depths: dict[str, int] = {}
        self.read_entry_children(item, entry, depth + 1)
        return entry

    def store(self, entry: dict[str, Any], key: str, value: Any, depth: int) -> None:
        # feedparser: a value at the same depth as the kept one or shallower replaces it.
        old = self.depths.get(key)
        if old is None or depth <= old:
            self.depths[key] = depth
            entry[key] = value

    def read_entry_children(
        self, parent: etree._Element, entry: dict[str, Any], depth: int
    ) -> None:
        for child in parent:
            name = _name(child)
            if not name:
                continue
            if name in _TITLES:
                value, detail = self.text_field(child, "text/plain")
                # A title inside one already read is dropped, type and all; otherwise the
                # type is kept even when the depth rule keeps the older value.
                if not -1 < self.title_depth <= depth:
                    self.store(entry, "title", value, depth)
                    entry["title_detail"] = detail
                if value and name != "media_title":
                    self.title_depth = depth
            elif name in _DESCRIPTIONS or name in _SUMMARIES:
                if "summary" in entry and not self.has_content:
                    raise Declined("a second summary, which feedparser reads as content")
                default = _DESCRIPTIONS.get(name, "text/plain")
                value, detail = self.text_field(child, default)
                self.store(entry, "summary", value, depth)
                entry["summary_detail"] = detail
            elif name in _CONTENTS:
                self.has_content = True
                value, detail = self.text_field(child, _CONTENTS[name])
                entry.setdefault("content", []).append(detail)
                if detail["type"] in _SUMMARY_FROM_CONTENT_TYPES:
                    entry.setdefault("summary", value)
            elif name == "link":
                self.entry_link(child, entry)
            elif name in ("id", "guid"):
                self.entry_id(child, entry, depth)
            elif name in _AUTHORS:
                self.entry_author(child, entry, depth)
            elif name in _PUBLISHED:
                entry["published_parsed"] = self.parse_date(self.simple_text(child))
            elif name in _UPDATED:
                entry["updated_parsed"] = self.parse_date(self.simple_text(child))
            elif name in _LANGUAGES:
                self.store(entry, "language", self.simple_text(child), depth)
            elif name in _ORIGINAL_LINKS:
                if child.attrib:
                    raise Declined(f"{name} with attributes")
                self.store(entry, name, self.simple_text(child), depth)
            elif name == "enclosure":
                entry.setdefault("links", []).append({"rel": "enclosure"})
            elif name == "source":
                # An RSS source names the outlet; its text goes to feedparser's source context.
                if _has_children(child):
                    raise Declined("an Atom source inside an entry")
                self.title_depth = -1
            elif name in _ENTRY_DECLINED:
                raise Declined(f"{name} inside an entry")
            elif name in _OTHER_TEXT_ELEMENTS:
                if _has_children(child):
                    raise Declined(f"markup inside {name}")
            elif name in _RESERVED_KEYS and not child.attrib:
                raise Declined(f"an element named {name}")
            elif _has_children(child):
                # feedparser reads nested elements wherever they are (media:group's title).
                self.read_entry_children(child, entry, depth + 1)

    def entry_link(self, element: etree._Element, entry: dict[str, Any]) -> None:
        attributes = _attributes(element)
        href = attributes.get("url") or attributes.get("uri") or attributes.get("href")
        rel = attributes.get("rel", "alternate")
        kind = attributes.get("type", "application/atom+xml" if rel == "self" else "text/html")
        entry.setdefault("links", []).append({"rel": rel})
        if href:
            if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
                entry["link"] = _urljoin(self.base(element), href)
            return
        output = self.simple_text(element, uri=True).replace("&amp;", "&")
        entry["link"] = _LINK_ENTITY.sub(r"&\1", output)

    def entry_id(self, element: etree._Element, entry: dict[str, Any], depth: int) -> None:
        # RSS: a guid is a permalink unless isPermaLink="false" (feedparser compares exactly).
        is_link = _attributes(element).get("ispermalink", "true") == "true"
        value = self.simple_text(element, uri=is_link)
        self.store(entry, "id", value, depth)
        entry.setdefault("guidislink", is_link and "link" not in entry)
        if is_link:
            entry.setdefault("link", value)

    def entry_author(self, element: etree._Element, entry: dict[str, Any], depth: int) -> None:
        if _has_children(element) and entry.get("author"):
            # feedparser then mixes the earlier author's name and e-mail into this one.
            raise Declined("a structured author after another author")
        detail: dict[str, str] = {}
        own = [element.text or ""]
        for child in element:
            name = _name(child)
            part = _AUTHOR_PARTS.get(name)
            if _has_children(child) or (part is None and name in _HANDLED):
                raise Declined("an author element feedparser reads in ways not modelled")
            if part is not None:
                detail[part] = (child.text or "").strip()
            own.append(child.tail or "")
        self.store(entry, "author", self.repair("".join(own).strip()), depth)
        author, email = detail.get("name"), detail.get("email")
        if author and email:
            entry["author"] = f"{author} ({email})"
        elif author or email:
            entry["author"] = author or email

    def base(self, element: etree._Element) -> str:
        """The base URI feedparser resolves this element's links against."""
        return self.bases.get(element, "") if self.bases else ""

    def simple_text(self, element: etree._Element, *, uri: bool = False) -> str:
        """An element's text as feedparser pops it: stripped, resolved, repaired."""
        if _has_children(element):
            raise Declined(f"child elements inside {_name(element)}")
        output = (element.text or "").strip()
        if uri:
            output = _urljoin(self.base(element), output)
        return self.repair(output)

    def text_field(self, element: etree._Element, default: str) -> tuple[str, dict[str, str]]:
        """A title, summary or content: its value and its feedparser detail (the type)."""
        attributes = _attributes(element)
        kind = _content_type(attributes.get("type", default))
        if attributes.get("mode") == "base64" or not (
            kind.startswith("text/") or kind.endswith(("+xml", "/xml"))
        ):
            raise Declined("base64 content")
        if kind == "application/xhtml+xml":
            output = _xhtml_markup(element).strip()
        elif _has_children(element):
            raise Declined(f"unescaped markup inside {_name(element)}")
        else:
            output = (element.text or "").strip()
        plain_rss = not self.version.startswith("atom") and kind == "text/plain"
        if plain_rss and self.looks_like_html(output):
            kind = "text/html"
        output = self.repair(output)
        return output, {"type": kind, "value": output}

    def repair(self, output: str) -> str:
        """feedparser's last touches to every text: double-encoded UTF-8 and cp1252 bytes."""
        # Both leave ASCII text as it is: checking first saves copying every long summary.
        if output.isascii():
            return output
        # feedparser hands its SAX parser UTF-8 whatever the document's encoding, so this
        # repair of double-encoded UTF-8 applies to every document.
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        return output.translate(_CP1252) if _C1_CONTROLS.search(output) else output

    def looks_like_html(self, text: str) -> bool:
        """feedparser's guess that RSS text is HTML: end tags or entities, all of them known."""
        if not (_END_TAG.search(text) or _ENTITY.search(text)):
            return False
        if any(tag.lower() not in self.html_names for tag in _TAG_NAME.findall(text)):
            return False
        return all(name in entitydefs for name in _NAMED_ENTITY.findall(text))
