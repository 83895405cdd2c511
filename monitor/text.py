"""Text normalisation shared by article keys, topic queries and matching."""

from __future__ import annotations

import re
import unicodedata

# Combining diacritical marks of the Latin, Greek, Cyrillic, Hebrew and Arabic scripts (and the
# general-purpose blocks). Marks that are part of the spelling in other scripts, such as the
# Devanagari virama, are kept: removing them would merge different words.
DIACRITICS = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)
# A word is a run of letters and digits; "_" separates words, as in SQLite FTS5's tokenizer.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case-fold ``text`` and strip its diacritics: ``Élection`` -> ``election``."""
    if text.isascii():
        return text.lower()
    # Unicode's compatibility caseless matching, NFKD(casefold(NFKD(text))): decomposing first
    # lets letters such as the mathematical script capital A (U+1D4D0) fold to "a" as well.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    if "\u0306" in folded or "\u0308" in folded:
        # The Cyrillic short i, short u and yi (U+0439, U+045E, U+0457) are letters of their
        # own, not accented forms of other letters: folding them would merge different words.
        folded = _recompose_cyrillic(folded)
    return DIACRITICS.sub("", folded)


_CYRILLIC_KEPT = {"\u0438\u0306": "\u0439", "\u0443\u0306": "\u045e", "\u0456\u0308": "\u0457"}


def _recompose_cyrillic(text: str) -> str:
    for decomposed, letter in _CYRILLIC_KEPT.items():
        text = text.replace(decomposed, letter)
    return text


def split_words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits, as they are (fold first to compare)."""
    return _WORD.findall(text)


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at a space near the limit when there is
    one (else anywhere: a title may be one 10,000-character word), ending in an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "\u2026"


def article_text(summary: str, content: str, body: str = "") -> str:
    """An article's text as matching reads it: the body extracted from its page first, then
    whatever of the feed's summary and content the body does not already say.

    Without a body, the summary and content. A teaser is usually the body's first sentence; kept
    twice, its words would count twice and snippets would come from it, not from the body.
    """
    if not body.strip():
        return f"{summary}\n\n{content}".strip()
    feed_parts = [part for part in (summary.strip(), content.strip()) if part]
    flat_body = " ".join(body.split()).casefold()
    extra = [part for part in feed_parts if " ".join(part.split()).casefold() not in flat_body]
    return "\n\n".join([body.strip(), *extra])
