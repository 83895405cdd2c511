"""The indexed path of a backtest returns exactly what the scan returns, on both databases.

Articles with Unicode text (accents, decomposed accents, ß and ligatures, Cyrillic and Greek,
Latin letters inside Cyrillic words, zero-width characters), hyphens, apostrophes, HTML
entities left in feed text, words longer than the index keeps whole, and long bodies are
stored in a real database. Every query the grammar tests (tests/topics/) write that parses,
and 200 queries drawn by hypothesis from the same vocabulary, are backtested twice: through
the search index (``backtest``) and by reading every article (``_scan_backtest``). The counts
per day, the samples in order and their hits must be the same.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.errors import MonitorError
from monitor.models import Article, Feed
from monitor.pages.store import store_body
from monitor.topics.matcher import Matcher, TopicRule
from monitor.topics.plan import plan_query
from monitor.topics.query import Node, parse_query
from monitor.topics.tagging import Backtest, Sample, _scan_backtest, article_view, backtest
from tests.utils.factories import add_article

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=40)
TOPICS_TESTS = Path(__file__).resolve().parent
LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # 90 letters: indexed cut
WORDS = [
    *("election", "Élection", "E\u0301lection", "elections", "électoral", "re-elected"),
    *("Russia", "Russia's", "Russia’s", "RUSSIA", "russian", "Kremlin", "kremlin"),
    *("interference", "central", "bank", "banks", "U.S.", "e-mail", "email", "café"),
    *("CAFE\u0301", "naïve", "Zürich", "señor", "Straße", "strasse", "ﬁnance", "finance"),
    *("Москва", "москве", "выборы", "выборов", "Путин", "Пу\u200bтин", "Шойгу", "Shoigu"),
    *("ёлка", "елка", "Αθήνα", "εκλογές", "ΕΚΛΟΓΕΣ", "Mосква", "&amp;", "AT&amp;T", "&quot;"),
    *("rock'n'roll", "don't", "state-of-the-art", "2024", "COVID-19", "O'Brien", LONG_WORD),
    *("the", "a", "of", "and", "in", "to", "vote", "votes", "voters", "sanctions", "fake"),
    *("news", "said", "today", "rates", "raised", "talks", "bomb", "iraq", "nato", "war"),
]
GAPS = [" "] * 10 + [", ", ". ", " — ", " “", "” ", ": ", "\n", " (", ") ", " - ", "…", "/"]
ARTICLE_COUNT = 120


def _text(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(WORDS) + rng.choice(GAPS) for _ in range(count)).strip()


def _store_articles(engine: Engine) -> None:
    """ARTICLE_COUNT articles over 45 days, some with a body from their page (two long)."""
    rng = random.Random(17)
    with Session(engine) as session, session.begin():
        for number in range(ARTICLE_COUNT):
            seen = NOW - timedelta(hours=rng.randint(0, 24 * 45))
            article = add_article(
                session,
                f"{_text(rng, rng.randint(1, 8))} #{number}",
                seen=seen,
                summary=_text(rng, rng.randint(0, 30)),
                content=_text(rng, rng.randint(0, 60)) if rng.random() < 0.5 else "",
                author=_text(rng, rng.randint(0, 2)),
                url=f"https://{rng.choice(['a.example', 'b.example.org'])}/{number}",
            )
            if number % 60 == 7 or rng.random() < 0.25:
                length = 2500 if number % 60 == 7 else rng.randint(20, 150)
                store_body(session, article_id=article.id or 0, body=_text(rng, length),
                           method="trafilatura")  # fmt: skip


@pytest.fixture
def archive(engine: Engine) -> Engine:
    _store_articles(engine)
    return engine


def _grammar_queries() -> list[str]:
    """Every string literal of the grammar tests that parses as a query."""
    found: dict[str, str] = {}  # one query per distinct tree
    for path in sorted(TOPICS_TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                if 0 < len(value) <= 300 and "\n" not in value and _parses(value):
                    found.setdefault(repr(parse_query(value)), value)
    return list(found.values())


def _parses(query: str) -> bool:
    try:
        parse_query(query)
    except MonitorError:
        return False
    return True


def _summary(result: Backtest) -> tuple[dict[date, int], list[tuple[object, ...]]]:
    return (
        result.per_day,
        [
            (s.article.id, s.hit.score, s.hit.terms, s.hit.spans, s.hit.snippet)
            for s in result.samples
        ],
    )


class Reference:
    """The scan, over the archive read once: the articles in first-seen order, newest first,
    matched as ``_scan_backtest`` matches them (checked against it for every tenth query)."""

    def __init__(self, session: Session) -> None:
        rows = session.exec(
            select(Article, Feed).join(Feed, col(Feed.id) == Article.feed_id)
            .where(col(Article.first_seen_at) >= SINCE)
        ).all()  # fmt: skip
        self.rows = sorted(rows, key=lambda row: (row[0].first_seen_at, row[0].id), reverse=True)
        self.compared = 0

    def backtest(self, node: Node) -> tuple[dict[date, int], list[tuple[object, ...]]]:
        """What the scan finds: counts per day and every match, newest first."""
        matcher = Matcher([TopicRule(0, "query", 0, node)])
        per_day: Counter[date] = Counter()
        samples = []
        for article, feed in self.rows:
            hits = matcher.match(article_view(article, feed_title=feed.title, feed_url=feed.url))
            if hits:
                per_day[article.first_seen_at.astimezone(UTC).date()] += 1
                samples.append(Sample(article, feed, hits[0]))
        return _summary(Backtest(len(self.rows), dict(sorted(per_day.items())), samples))


def _compare(session: Session, reference: Reference, node: Node) -> Backtest:
    """Backtest ``node`` through the index, in full and with a small limit, against the scan."""
    indexed = backtest(session, node, since=SINCE, limit=1000)
    per_day, samples = reference.backtest(node)
    assert _summary(indexed) == (per_day, samples), str(node)
    assert indexed.scanned == len(reference.rows)
    assert indexed.planned == (plan_query(node) is not None)
    few = backtest(session, node, since=SINCE, limit=3)
    assert _summary(few) == (per_day, samples[:3]), str(node)
    if reference.compared % 10 == 0:
        scanned = _scan_backtest(
            session, node, since=SINCE, limit=1000, timezone="UTC", before=None
        )
        assert _summary(scanned) == _summary(indexed), str(node)
    reference.compared += 1
    return indexed


GRAMMAR_QUERIES = _grammar_queries()


def test_the_grammar_tests_give_many_queries() -> None:
    # The differential test below is only as good as the queries it finds.
    assert len(GRAMMAR_QUERIES) > 150


def test_every_grammar_query_gives_the_scans_matches(archive: Engine) -> None:
    planned = exact = matched = 0
    with Session(archive) as session:
        reference = Reference(session)
        for query in GRAMMAR_QUERIES:
            result = _compare(session, reference, parse_query(query))
            planned += result.planned
            matched += result.total > 0
            plan = plan_query(parse_query(query))
            exact += plan is not None and plan.exact
    # The index answered most of them, exactly for some; and they found things.
    assert planned > len(GRAMMAR_QUERIES) * 0.8
    assert exact > 20
    assert matched > 40


_VOCABULARY = [
    *("election", "elect*", "élection", "russia", "russia's", "kremlin", "central", "bank"),
    *("banks", "u.s.", "e-mail", "email", "cafe", "naive", "zurich", "strasse", "finance"),
    *("москва", "выборы", "путин", "елка", "αθηνα", "εκλογες", "amp", "at&t", "don't"),
    *("state-of-the-art", "2024", "covid-19", "o'brien", "rock*", "vot*", "~vote", "~выборы"),
    *("translit:Шойгу", "translit:Shoigu", "news", "fake", "iraq", "bomb", LONG_WORD, "nato"),
    *(LONG_WORD[:70] + "*", "pneumono*", '"central bank"', '"fake news"', '"elect* interference"'),
]


def _query_strategy() -> st.SearchStrategy[str]:
    word = st.sampled_from(_VOCABULARY)
    source = st.sampled_from(["site:a.example", "site:example.org", "lang:en", "feed:example"])
    field = st.sampled_from(["title:", "text:", "author:"])
    leaf = st.one_of(word, word, word, st.builds(lambda f, w: f + w, field, word), source)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        near = st.sampled_from(["NEAR", "NEAR/2", "NEAR/0", "ONEAR/3"])
        return st.one_of(
            st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
            st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
            st.builds(lambda a, b: f"({a} {b})", inner, inner),
            st.builds(lambda a, b: f"({a} AND NOT {b})", inner, inner),
            st.builds(lambda a, n, b: f"{a} {n} {b}", word, near, word),
        )

    return st.recursive(leaf, extend, max_leaves=6)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=_query_strategy())
def test_random_queries_give_the_scans_matches(archive: Engine, query: str) -> None:
    try:
        node = parse_query(query)
    except MonitorError:
        return  # NEAR of a NOT, a query of NOTs alone: refused for both paths alike
    with Session(archive) as session:
        _compare(session, Reference(session), node)


@pytest.mark.parametrize(
    ("query", "planned", "exact"),
    [
        ("russia", True, True),
        ("elect* OR kremlin", True, True),
        ("title:bank AND text:central", True, True),
        ('"central bank"', True, False),
        ("москва", True, False),
        ("russia NEAR/3 kremlin", True, False),
        ("bank AND NOT central", True, False),
        ("~vote", True, True),
        ("site:a.example", False, False),
        ("site:a.example OR bank", False, False),
        ("lang:en bank", True, False),
    ],
)
def test_plans(query: str, planned: bool, exact: bool) -> None:
    plan = plan_query(parse_query(query))
    assert (plan is not None) == planned
    assert plan is None or plan.exact == exact


def test_a_cursor_pages_through_the_same_matches(archive: Engine) -> None:
    node = parse_query("russia OR bank OR москва")
    with Session(archive) as session:
        whole = backtest(session, node, since=SINCE, limit=1000)
        first = backtest(session, node, since=SINCE, limit=5)
        last = first.samples[-1].article
        rest = backtest(session, node, since=SINCE, limit=1000,
                        before=(last.first_seen_at, last.id or 0))  # fmt: skip
        scanned_rest = _scan_backtest(session, node, since=SINCE, limit=1000, timezone="UTC",
                                      before=(last.first_seen_at, last.id or 0))  # fmt: skip
    ids = [s.article.id for s in whole.samples]
    assert len(ids) > 10
    assert [s.article.id for s in first.samples + rest.samples] == ids
    assert _summary(rest) == _summary(scanned_rest)
