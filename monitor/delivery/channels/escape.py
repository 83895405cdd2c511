"""Feed text made inert for chat: each format's markup escaped, mentions and links defused.

A hostile title such as ``<!channel> @everyone [click](https://evil.example)`` must arrive as
the words it is: no ping, no hidden link. Every value a chat template prints passes through
the function of its format (``escape_for``): markup characters are escaped, and a zero-width
space follows every ``@`` (the way discord.js defuses mentions), so ``@everyone``, ``@here``,
``@room`` and ``<@U123>`` name nobody on any service. Line breaks, control characters and
bidirectional overrides go, so a value stays on its line and reads as it is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from markupsafe import escape as html_escape

ZERO_WIDTH_SPACE = "\u200b"
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Characters CommonMark gives a meaning to (emphasis, code, links, images, autolinks and raw
# HTML, headings, tables, strikethrough); each is escaped with a backslash.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>()#!|~])")
# An HTML entity (``&#64;``, ``&lt;``) would be decoded into the character it names by a
# Markdown or HTML renderer: broken with a zero-width space after the ampersand.
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# An ``@`` not yet defused (so escaping twice changes nothing more).
_AT = re.compile("@(?!\u200b)")
# Slack's special commands and channel links open with ``<!`` and ``<#``.
_SLACK_COMMAND = re.compile("<(?=[!#])")


def plain_line(text: str) -> str:
    """``text`` on one line: no controls, no bidirectional overrides, spaces collapsed."""
    text = text.translate(_BIDI_CONTROLS)
    if not text.isprintable():
        text = "".join(
            c for c in text if c.isspace() or unicodedata.category(c) not in ("Cc", "Cs", "Co")
        )
    return " ".join(text.split())


def defuse_mentions(text: str) -> str:
    """``@`` followed by a zero-width space, and ``<!`` / ``<#`` split by one: no service
    reads a mention (``@everyone``, ``<@U123>``, Slack's ``<!channel>``) in it any more."""
    text = _SLACK_COMMAND.sub("<" + ZERO_WIDTH_SPACE, text)
    return _AT.sub("@" + ZERO_WIDTH_SPACE, text)


def escape_text(text: str) -> str:
    """Plain text (ntfy, push services): one line, entities broken, mentions defused."""
    return defuse_mentions(_ENTITY.sub("&" + ZERO_WIDTH_SPACE, plain_line(text)))


def escape_markdown(text: str) -> str:
    """CommonMark (Slack through Apprise's mrkdwn translation, Discord, Matrix, Teams): markup
    characters backslash-escaped, entities broken, mentions defused."""
    text = _ENTITY.sub("&" + ZERO_WIDTH_SPACE, plain_line(text))
    return defuse_mentions(_MARKDOWN_SPECIAL.sub(r"\\\1", text))


def escape_slack(text: str) -> str:
    """Slack mrkdwn, for a JSON template posting to Slack itself: ``&``, ``<`` and ``>`` as
    entities (Slack's only escapes, which keep ``<!channel>`` and ``<url|text>`` literal),
    mentions defused."""
    text = plain_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return defuse_mentions(text)


def escape_html(text: str) -> str:
    """HTML (Telegram, Matrix's formatted body): ``&<>"'`` as entities, mentions defused."""
    return str(html_escape(defuse_mentions(plain_line(text))))


ESCAPERS: dict[str, Callable[[str], str]] = {
    "markdown": escape_markdown,
    "html": escape_html,
    "text": escape_text,
    "slack": escape_slack,
}


def escape_for(format_name: str) -> Callable[[str], str]:
    """The escaping function of a chat format: markdown, html, text or slack."""
    return ESCAPERS[format_name]
