"""Text normalisation shared by article keys and topic matching."""

from __future__ import annotations

import re
import unicodedata

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _drop_combining(match: re.Match[str]) -> str:
    char = match.group()
    return "" if unicodedata.combining(char) else char


def fold(text: str) -> str:
    """Case-fold ``text`` and strip its diacritics: ``Élection`` -> ``election``."""
    if text.isascii():
        return text.lower()
    # Unicode's compatibility caseless matching, NFKD(casefold(NFKD(text))): decomposing first
    # lets letters such as the mathematical script capital A (U+1D4D0) fold to "a" as well.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    # Only non-ASCII characters can be combining marks; testing just those is about 6x faster
    # than a loop over every character of a mostly-English article.
    return _NON_ASCII.sub(_drop_combining, folded)
