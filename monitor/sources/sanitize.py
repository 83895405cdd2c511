"""What we keep of a feed's HTML: plain text (html_to_text), or HTML cleaned by nh3 (sanitize_html).

Both parse paths (feedparser's and the fast lxml one) send every piece of markup through here,
so the text stored never depends on which parser read the document.
"""

from __future__ import annotations

import re
import threading

import nh3
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from monitor.untrusted import strip_controls

# Elements whose text is never article prose.
SKIPPED_ELEMENTS = frozenset(
    {"script", "style", "template", "noscript", "svg", "math", "head", "iframe"}
)
BLOCK_ELEMENTS = frozenset(
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
# Void elements have no end tag: one line break, where the old HTMLParser gave one for "<br>".
_VOID_BLOCKS = frozenset({"br", "hr"})

# What sanitize_html lets through: text structure, emphasis, lists, quotes, tables, links and
# images; no attribute beyond a link's target and an image's source and text. Everything else
# (script, style, iframe, forms, event handlers, style attributes) is dropped, and the content of
# script/style-like elements with it. Links get rel="noopener noreferrer nofollow".
SANITIZE_TAGS = frozenset(
    {
        *(BLOCK_ELEMENTS - {"section", "article", "div"}),
        "a",
        "abbr",
        "b",
        "cite",
        "code",
        "em",
        "i",
        "img",
        "q",
        "s",
        "small",
        "strong",
        "sub",
        "sup",
        "tbody",
        "td",
        "th",
        "thead",
        "u",
    }
)
SANITIZE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
SANITIZE_URL_SCHEMES = frozenset({"http", "https", "mailto"})

# Only runs that change: a lone plain space is left alone, which keeps sub() from copying.
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]{2,}|[\t\r\f\v\u00a0]")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


class _Parsers(threading.local):
    # One libxml2 HTML parser per thread: an lxml parser must not serve two threads at once.
    def __init__(self) -> None:
        self.html = etree.HTMLParser(
            recover=True,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            default_doctype=False,
            huge_tree=False,
        )


_PARSERS = _Parsers()


def html_to_text(markup: str) -> str:
    """Readable plain text from an HTML fragment: tags dropped, paragraphs kept as blank lines."""
    if "<" not in markup and "&" not in markup:
        return tidy_text(markup)
    # An explicit body keeps a fragment that opens with <title> or <meta> out of the <head>.
    document = etree.fromstring(f"<html><body>{markup}</body></html>", _PARSERS.html)
    if document is None:
        return ""
    body = document.find("body")
    root = document if body is None else body
    # Done in libxml2 rather than element by element in Python: drop what is not prose, mark
    # each block's edges with a line break, then read the text in document order.
    etree.strip_elements(root, *SKIPPED_ELEMENTS, with_tail=False)
    # lxml decodes "&#27;" into ESC when it reads, but refuses to be given one back: the text
    # is cleaned of controls on the way (they are stripped at the parse edge anyway). Markup
    # with no control and no character reference has none to clean (named entities decode
    # to none): most feeds' markup, spared a call per block.
    clean = "&#" in markup or strip_controls(markup) is not markup
    for block in root.iter(*BLOCK_ELEMENTS):
        # A tail follows the element's end; a void element has only the one break.
        if clean:
            if block.tag not in _VOID_BLOCKS:
                block.text = "\n" + strip_controls(block.text or "")
            block.tail = "\n" + strip_controls(block.tail or "")
        else:
            if block.tag not in _VOID_BLOCKS:
                block.text = "\n" + (block.text or "")
            block.tail = "\n" + (block.tail or "")
    return tidy_text("".join(root.itertext()))


def element_text(element: etree._Element) -> str:
    """The plain text of an XML element's content (XHTML), read as html_to_text reads HTML."""
    parts: list[str] = [element.text or ""]
    _collect_text(element, parts)
    return tidy_text("".join(parts))


def _collect_text(element: etree._Element, parts: list[str]) -> None:
    for child in element:
        tag = child.tag
        if isinstance(tag, str):
            # XHTML content arrives as namespaced XML elements: compare local names.
            name = tag.rpartition("}")[2].lower() if "}" in tag else tag.lower()
            if name in SKIPPED_ELEMENTS:
                pass
            elif name in BLOCK_ELEMENTS:
                parts.append("\n")
                if name not in _VOID_BLOCKS:
                    parts.append(child.text or "")
                    _collect_text(child, parts)
                    parts.append("\n")
            else:
                parts.append(child.text or "")
                _collect_text(child, parts)
        parts.append(child.tail or "")


def tidy_text(text: str) -> str:
    """Whitespace tidied: runs of spaces to one, lines trimmed, blank-line runs to one."""
    lines = _SPACES.sub(" ", text).split("\n")
    return _BLANK_LINES.sub("\n\n", "\n".join(map(str.strip, lines))).strip()


def one_line(text: str) -> str:
    """All whitespace runs, line breaks included, as single spaces."""
    return " ".join(text.split())


def sanitize_html(markup: str) -> str:
    """HTML safe to show: only SANITIZE_TAGS and SANITIZE_ATTRIBUTES survive (nh3/ammonia)."""
    return nh3.clean(
        markup,
        tags=set(SANITIZE_TAGS),
        attributes={tag: set(names) for tag, names in SANITIZE_ATTRIBUTES.items()},
        clean_content_tags=set(SKIPPED_ELEMENTS - {"head"}),
        url_schemes=set(SANITIZE_URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
