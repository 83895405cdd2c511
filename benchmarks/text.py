"""Article text for the match and store benchmarks: ~3 KB articles built from corpus entries,
or from generated words when the corpus is absent."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from benchmarks.common import Corpus
from monitor.errors import MonitorError
from monitor.sources.parse import ParsedEntry, parse_feed

ARTICLE_CHARS = 3000
PER_FEED = 20
MIN_ITEM_BYTES = 1000
_SYLLABLES = ("ka", "ri", "to", "na", "mi", "se", "lo", "ve", "da", "pu", "ne", "ra", "shi", "ten")


@dataclass(frozen=True, slots=True)
class SampleArticle:
    """A title and a body of about ARTICLE_CHARS characters."""

    title: str
    body: str


def corpus_entries(corpus: Corpus, *, limit: int) -> list[ParsedEntry]:
    """Up to ``limit`` entries with some text, at most PER_FEED from each feed, small feeds first.

    Feeds of bare titles, or of a thousand one-line items, are left out: they are not articles.
    """
    feeds = sorted(
        (feed for feed in corpus.feeds if MIN_ITEM_BYTES * feed.items <= feed.size),
        key=lambda feed: feed.size,
    )
    entries: list[ParsedEntry] = []
    for feed in feeds:
        if len(entries) >= limit:
            break
        try:
            parsed = parse_feed(feed.read(), url=f"http://127.0.0.1/feeds/{feed.name}")
        except MonitorError:
            continue
        usable = [e for e in parsed.entries if e.title and len(e.summary + e.content) >= 200]
        entries.extend(usable[:PER_FEED])
    return entries[:limit]


def _clip(text: str, chars: int) -> str:
    """``text`` cut to at most ``chars`` characters, at a space when there is one."""
    if len(text) <= chars:
        return text
    cut = text.rfind(" ", 0, chars)
    return text[: cut if cut > chars // 2 else chars]


def articles_from_entries(
    entries: list[ParsedEntry], *, count: int, chars: int = ARTICLE_CHARS
) -> list[SampleArticle]:
    """``count`` articles: an entry's title, and its text followed by the next entries' text."""
    articles = []
    for index in range(count):
        title = entries[index % len(entries)].title
        parts: list[str] = []
        size, offset = 0, index
        while size < chars and offset < index + len(entries):
            entry = entries[offset % len(entries)]
            text = "\n\n".join(part for part in (entry.summary, entry.content) if part)
            parts.append(text)
            size += len(text) + 2
            offset += 1
        articles.append(SampleArticle(title, _clip("\n\n".join(parts), chars)))
    return articles


def generated_vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """``size`` distinct pronounceable made-up words."""
    vocabulary: dict[str, None] = {}
    while len(vocabulary) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
        vocabulary.setdefault(word, None)
    return list(vocabulary)


def generated_text(rng: random.Random, vocabulary: list[str], *, words: int) -> str:
    """Sentences of Zipf-distributed words, the way word frequencies fall in real prose."""
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    chosen = rng.choices(vocabulary, weights=weights, k=words)
    sentences = (chosen[i : i + 14] for i in range(0, len(chosen), 14))
    return " ".join(" ".join(sentence).capitalize() + "." for sentence in sentences)


def generated_articles(
    rng: random.Random, *, count: int, chars: int = ARTICLE_CHARS
) -> list[SampleArticle]:
    """``count`` articles of made-up words."""
    vocabulary = generated_vocabulary(rng)
    return [
        SampleArticle(
            generated_text(rng, vocabulary, words=10).rstrip("."),
            _clip(generated_text(rng, vocabulary, words=chars // 5), chars),
        )
        for _ in range(count)
    ]


def sample_articles(
    corpus: Corpus | None, *, count: int, rng: random.Random
) -> tuple[list[SampleArticle], str]:
    """``count`` articles and where their text came from."""
    if corpus is not None:
        entries = corpus_entries(corpus, limit=count)
        if entries:
            source = f"text of {len(entries)} corpus entries, joined into ~{ARTICLE_CHARS} chars"
            return articles_from_entries(entries, count=count), source
    return generated_articles(rng, count=count), "generated words (no corpus)"


def average_chars(articles: Iterable[SampleArticle]) -> float:
    """The mean length of title plus body."""
    sizes = [len(article.title) + len(article.body) for article in articles]
    return sum(sizes) / len(sizes) if sizes else 0.0
