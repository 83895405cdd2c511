"""The 62 real article pages of ``../shared/articles``, their hand-marked bodies, and the
benchmark's score of an extraction against them.

The score is the one the article-extraction benchmark publishes (its README): each text split
on whitespace, tokens compared as multisets; per page, true positives, false positives and false
negatives as shares of their sum (so a long page weighs no more than a short one); precision and
recall are the means over the pages (a page with nothing on one side counts as the benchmark
says), and F1 is given both as the mean of the pages' F1 and as the F1 of the two means.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

ARTICLES_ENV = "MONITOR_ARTICLES"
DEFAULT_ARTICLES = Path(__file__).resolve().parents[2].parent / "shared" / "articles"


@dataclass(frozen=True, slots=True)
class ArticlePage:
    """One captured page: its id (the file's hash), URL, HTML and the body a person marked."""

    key: str
    url: str
    html: bytes
    body: str

    @property
    def path(self) -> str:
        """The page's own path (with its query), as served from the local news site."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def teaser(self) -> str:
        """One sentence of the body: what a news feed says of the article."""
        first = self.body.strip().split("\n", 1)[0]
        cut = first.find(". ", 40)
        return (first[: cut + 1] if 0 < cut < 200 else first[:150]).strip()


def articles_location() -> Path:
    """Where the pages are looked for: ``$MONITOR_ARTICLES`` or ``../shared/articles``."""
    configured = os.environ.get(ARTICLES_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_ARTICLES


def articles_missing() -> str:
    """Why tests and benchmarks over the pages are skipped."""
    return f"no article pages at {articles_location()} (set {ARTICLES_ENV} to that directory)"


@cache
def load_articles() -> tuple[ArticlePage, ...]:
    """Every page with its ground truth, by id; empty when the directory is absent."""
    root = articles_location()
    truth_path = root / "ground-truth.json"
    if not truth_path.is_file():
        return ()
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    pages = []
    for key, item in sorted(truth.items()):
        html = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes())
        pages.append(ArticlePage(key, item["url"], html, item.get("articleBody") or ""))
    return tuple(pages)


@dataclass(frozen=True, slots=True)
class PageScore:
    """One page's shares of true positives, false positives and false negatives."""

    tp: float
    fp: float
    fn: float

    @property
    def precision(self) -> float:
        """Tokens extracted that are the article's, as the benchmark counts them."""
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fp == 0:
            return 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Tokens of the article that were extracted."""
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fn == 0:
            return 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        """The page's F1."""
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score_page(truth: str, extracted: str) -> PageScore:
    """Whitespace tokens of both texts compared as multisets, normalised by their sum."""
    expected, found = Counter(truth.split()), Counter(extracted.split())
    tp = sum((expected & found).values())
    fp = sum((found - expected).values())
    fn = sum((expected - found).values())
    total = tp + fp + fn
    if not total:
        return PageScore(0.0, 0.0, 0.0)
    return PageScore(tp / total, fp / total, fn / total)


@dataclass(frozen=True, slots=True)
class Quality:
    """An extraction's scores over all pages."""

    precision: float
    recall: float
    f1_of_means: float
    mean_f1: float
    pages: int


def score_extraction(pages: tuple[ArticlePage, ...], texts: Mapping[str, str]) -> Quality:
    """Score the extracted ``texts`` (by page id; a missing page extracted nothing)."""
    scores = [score_page(page.body, texts.get(page.key, "")) for page in pages]
    precision = statistics.mean(s.precision for s in scores if s.tp + s.fp > 0)
    recall = statistics.mean(s.recall for s in scores if s.tp + s.fn > 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, statistics.mean(s.f1 for s in scores), len(scores))


def teaser_feed(items: Iterator[tuple[str, str, str]], *, title: str = "Local news site") -> bytes:
    """An RSS feed of (link, title, teaser) items, dated now (news, not a new feed's backlog)."""
    published = format_datetime(datetime.now(UTC), usegmt=True)
    entries = "".join(
        f"<item><title>{escape(headline)}</title><link>{escape(link)}</link>"
        f"<guid>{escape(link)}</guid><pubDate>{published}</pubDate>"
        f"<description>{escape(teaser)}</description></item>"
        for link, headline, teaser in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://news.invalid/</link>"
        f"<description>Teasers</description>{entries}</channel></rss>"
    ).encode()
