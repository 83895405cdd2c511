"""Feed text and links made safe to show: which characters and link schemes never reach a reader.

Feeds are written by strangers. A right-to-left override (U+202E) makes "gnp.exe" read as
"exe.png"; an ANSI escape (``\\x1b[31m``) or a carriage return rewrites what a terminal shows;
a ``javascript:`` or ``data:`` link runs code or hides a page when clicked. The parse edge
(``monitor.sources.parse``) sends every title, text and link through here before anything is
stored; the outputs (CLI printing, e-mail bodies, web pages, the API) apply the same functions
again to what an older version stored. Shared by every stage, so it imports nothing of monitor.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# Terminal escape sequences, whole: CSI (ESC [ ... final, or the 8-bit CSI U+009B), OSC
# (ESC ] ... BEL or ESC \), and the other two-character ESC sequences. Removing only the ESC
# would leave "[31m" in the text.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): they
# reorder the characters around them. The implicit marks (LRM, RLM, ALM) are kept: they only
# set the direction of neutral characters, cannot reverse letters, and right-to-left text
# needs them to place its punctuation.
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
# Controls that end a line on a terminal or in a mail reader become line breaks, so they can
# neither overwrite a line (a bare CR) nor glue two words together.
_LINE_ENDS = re.compile("\r\n|[\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Every other C0 control but tab and line feed, DEL, every C1 control, and the bidi controls.
_CONTROLS = re.compile(f"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f{BIDI_CONTROLS}]")
_ANY = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{BIDI_CONTROLS}]")
# In a link: the same characters, and spaces, are percent-encoded (as a browser would send them).
_URL_UNSAFE = re.compile(f"[\x00-\x20\x7f-\x9f{BIDI_CONTROLS}]")
WEB_SCHEMES = ("http", "https")


def strip_controls(text: str) -> str:
    """``text`` without terminal escapes, bidi overrides and control characters (tab and line
    feed stay; other line-ending controls become line feeds)."""
    if not _ANY.search(text):
        return text
    if "\x1b" in text or "\x9b" in text:
        text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", _LINE_ENDS.sub("\n", text))


def web_url(url: str | None) -> str:
    """``url`` if it is an http(s) link, its controls percent-encoded; otherwise empty.

    ``javascript:``, ``data:``, ``vbscript:``, ``file:`` and relative links are never shown or
    sent as an article's link.
    """
    if not url:
        return ""
    # As a browser reads a link: surrounding spaces and controls dropped, tabs and newlines
    # inside removed, then the scheme is what counts (" JavaScript:" is javascript:).
    cleaned = re.sub("[\t\n\r]", "", url.strip(" \t\n\r\f\v\x00"))
    try:
        parts = urlsplit(cleaned)
    except ValueError:  # an invalid IPv6 host, say
        return ""
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
        return ""
    return _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), cleaned)
