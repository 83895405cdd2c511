"""Text normalisation shared by article keys, topic queries and matching.

``fold`` is the one place that decides when two spellings are the same word for matching
(and for the search index, whose tokenizer must agree with it):

- case and compatibility forms: Unicode caseless matching (``Élection``, ``ＡＢＣ``, ``ﬁ``);
- diacritics of Latin, Greek, Cyrillic, Hebrew and Arabic letters are dropped (``é`` -> ``e``),
  so Russian ``ё`` folds to ``е`` (``ещё`` matches ``еще``: most Russian text omits the dots);
  the Cyrillic letters ``й``, ``ў`` and ``ї`` stay themselves (letters of their own);
- invisible characters used to split a word without showing it (zero-width space, joiners,
  the word joiner, a byte-order mark, the soft hyphen) are removed, so ``Пу\u200bтин`` is
  ``путин``;
- a word written in two scripts, a trick to dodge filters (Latin ``a`` or ``p`` inside a
  Cyrillic word, Cyrillic ``о`` inside a Latin one), is written in one: the letters of the
  other script that look alike are replaced (see ``_unmix``).
"""

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
# Format characters that only split or join a word invisibly: zero-width space, non-joiner and
# joiner, word joiner, invisible operators, the Mongolian vowel separator, a byte-order mark
# inside text, and the soft hyphen (a hyphenation hint).
INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060-\u2064\u180e\ufeff\u00ad]")
# Lower-case Latin and Cyrillic letters that look the same (after case folding), from Unicode's
# confusables.txt (UTS #39), upper-case pairs included by their lower-case letters (Latin B and
# Cyrillic В: b and в).
_LATIN_CYRILLIC = {
    "a": "а", "b": "в", "c": "с", "e": "е", "h": "н", "i": "і", "j": "ј", "k": "к", "m": "м",
    "o": "о", "p": "р", "s": "ѕ", "t": "т", "x": "х", "y": "у",
}  # fmt: skip
_TO_CYRILLIC = str.maketrans(_LATIN_CYRILLIC)
_TO_LATIN = str.maketrans({cyrillic: latin for latin, cyrillic in _LATIN_CYRILLIC.items()})
_LATIN_LOOKALIKES = frozenset(_LATIN_CYRILLIC)
_CYRILLIC_LOOKALIKES = frozenset(_LATIN_CYRILLIC.values())
# A Latin letter beside a Cyrillic one: a word written in both scripts has one (one quick scan
# rules out almost every text), and the words that have one are then rewritten.
_SCRIPTS_MEET = re.compile("[a-z][\u0400-\u04ff]|[\u0400-\u04ff][a-z]")
_LETTERS = re.compile(r"[^\W\d_]+")
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\u180e\ufeff\u00ad"
_ANY_CYRILLIC = re.compile("[\u0400-\u04ff]")
_LATIN_RUN = re.compile("[A-Za-z]+")


def fold(text: str) -> str:
    """Case-fold ``text`` and strip its diacritics: ``Élection`` -> ``election`` (see above)."""
    if text.isascii():
        return text.lower()
    if any(char in text for char in _INVISIBLE_CHARS):  # eleven scans in C: cheaper than a regex
        text = INVISIBLE.sub("", text)
    mixed = _scripts_meet(text)
    # Unicode's compatibility caseless matching, NFKD(casefold(NFKD(text))): decomposing first
    # lets letters such as the mathematical script capital A (U+1D4D0) fold to "a" as well.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    if "\u0306" in folded or "\u0308" in folded:
        # The Cyrillic short i, short u and yi (U+0439, U+045E, U+0457) are letters of their
        # own, not accented forms of other letters: folding them would merge different words.
        folded = _recompose_cyrillic(folded)
    folded = DIACRITICS.sub("", folded)
    if mixed:
        folded = _LETTERS.sub(_unmix, folded)
    return folded


def _scripts_meet(text: str) -> bool:
    """Whether a Latin letter stands beside a Cyrillic one somewhere in ``text``: found from the
    runs of Latin letters, few in Cyrillic text (a regex looking at every character for the pair
    took 0.24 ms on 3 KB of Russian, more than folding it)."""
    if not _ANY_CYRILLIC.search(text):
        return False
    for run in _LATIN_RUN.finditer(text):
        start, end = run.span()
        if (start and "\u0400" <= text[start - 1] <= "\u04ff") or (
            end < len(text) and "\u0400" <= text[end] <= "\u04ff"
        ):
            return True
    return False


_CYRILLIC_KEPT = {"\u0438\u0306": "\u0439", "\u0443\u0306": "\u045e", "\u0456\u0308": "\u0457"}


def _recompose_cyrillic(text: str) -> str:
    for decomposed, letter in _CYRILLIC_KEPT.items():
        text = text.replace(decomposed, letter)
    return text


def _unmix(match: re.Match[str]) -> str:
    """A word of Latin and Cyrillic letters in one script: the script whose letters all have a
    lookalike in the other is the one replaced (the fewer, when both have), else none."""
    word = match.group()
    if not _SCRIPTS_MEET.search(word):
        return word
    latin = {char for char in word if "a" <= char <= "z"}
    cyrillic = {char for char in word if "\u0400" <= char <= "\u04ff"}
    latin_replaceable = latin <= _LATIN_LOOKALIKES
    cyrillic_replaceable = cyrillic <= _CYRILLIC_LOOKALIKES
    latin_count = sum(1 for char in word if "a" <= char <= "z")
    if latin_replaceable and (not cyrillic_replaceable or latin_count * 2 <= len(word)):
        return word.translate(_TO_CYRILLIC)
    if cyrillic_replaceable:
        return word.translate(_TO_LATIN)
    return word


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
