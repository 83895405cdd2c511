"""Match article text against every enabled topic's keywords and phrases.

Matching works on words: text and keywords are case-folded, stripped of diacritics and split into
Unicode words, so ``Election Interference`` matches the keyword ``election interference`` and
``Russia's`` contains the word ``russia``, while ``Russians`` does not (write ``russian*``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

from monitor.text import fold

_WORD = re.compile(r"\w+")
# Title hits say more about what an article is about than a passing mention in its body.
TITLE_WEIGHT = 3.0


def words(text: str) -> list[str]:
    """The folded Unicode words of ``text``, in order."""
    return _WORD.findall(fold(text))


@dataclass(frozen=True, slots=True)
class Keyword:
    """A word or phrase to look for; a token ending in ``*`` matches any word it starts."""

    text: str
    tokens: tuple[str, ...]


def parse_keyword(text: str) -> Keyword:
    """Read a keyword or phrase; raise ValueError saying what is wrong with it."""
    raw_tokens = fold(text).replace('"', " ").split()
    if not raw_tokens:
        raise ValueError("empty keyword")
    tokens: list[str] = []
    for raw in raw_tokens:
        pieces = _WORD.findall(raw.rstrip("*"))
        if not pieces:
            raise ValueError(f"{text!r}: {raw!r} has no letters or digits")
        if "*" in raw.rstrip("*") or raw.endswith("**"):
            raise ValueError(f"{text!r}: a wildcard * may only end a word, as elect*")
        if raw.endswith("*") and len(pieces[-1]) < 3:
            raise ValueError(f"{text!r}: a wildcard needs at least 3 letters before the *")
        tokens.extend(pieces[:-1])
        tokens.append(pieces[-1] + ("*" if raw.endswith("*") else ""))
    return Keyword(text=text.strip(), tokens=tuple(tokens))


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic as the matcher sees it."""

    topic_id: int
    slug: str
    version: int
    keywords: tuple[Keyword, ...]


@dataclass(frozen=True, slots=True)
class TopicHit:
    """A topic that matched a text: a score and the keywords that matched."""

    topic_id: int
    slug: str
    version: int
    score: float
    terms: tuple[str, ...]


class _Positions:
    """Where each word occurs in a text, so a phrase is checked only where its first word is."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tokens
        self.index: dict[str, list[int]] = defaultdict(list)
        for position, token in enumerate(tokens):
            self.index[token].append(position)
        self._vocabulary: list[str] | None = None

    def starts(self, token: str) -> Iterable[int]:
        if not token.endswith("*"):
            return self.index.get(token, [])
        stem = token[:-1]
        if self._vocabulary is None:
            self._vocabulary = sorted(self.index)
        # Words starting with the stem sit together in sorted order: find them by bisection.
        first = bisect_left(self._vocabulary, stem)
        positions: list[int] = []
        for word in islice(self._vocabulary, first, None):
            if not word.startswith(stem):
                break
            positions.extend(self.index[word])
        return sorted(positions)

    def count(self, keyword: Keyword) -> int:
        first, rest = keyword.tokens[0], keyword.tokens[1:]
        return sum(1 for start in self.starts(first) if self._follows(start + 1, rest))

    def _follows(self, position: int, rest: Sequence[str]) -> bool:
        if position + len(rest) > len(self.tokens):
            return False
        return all(
            _token_matches(pattern, self.tokens[position + offset])
            for offset, pattern in enumerate(rest)
        )


def _token_matches(pattern: str, word: str) -> bool:
    return word.startswith(pattern[:-1]) if pattern.endswith("*") else word == pattern


class Matcher:
    """All enabled topics compiled once; ``match`` says which of them a text belongs to."""

    def __init__(self, rules: Iterable[TopicRule]) -> None:
        self.rules = tuple(rules)

    def match(self, title: str, body: str) -> list[TopicHit]:
        """Every topic with at least one keyword in ``title`` or ``body``, best score first."""
        title_words, body_words = _Positions(words(title)), _Positions(words(body))
        hits = []
        for rule in self.rules:
            score, terms = 0.0, []
            for keyword in rule.keywords:
                found = TITLE_WEIGHT * title_words.count(keyword) + body_words.count(keyword)
                if found:
                    score += found
                    terms.append(keyword.text)
            if terms:
                hits.append(TopicHit(rule.topic_id, rule.slug, rule.version, score, tuple(terms)))
        return sorted(hits, key=lambda hit: (-hit.score, hit.slug))
