"""Search filters are the query language's own clauses, and page bounds take the tighter end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.cursor import encode_cursor
from monitor.errors import UsageError
from monitor.topics.query import parse_query
from monitor.topics.results import every_match, filtered_query, later_bound
from monitor.topics.tagging import backtest
from tests.utils.factories import add_article

AT = datetime(2024, 9, 9, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "filters", "reads"),
    [
        ("election", {}, "election"),
        ("election", {"site": " BBC.co.uk "}, 'election AND site:"bbc.co.uk"'),
        ("election", {"feed": "Paris  Wire"}, 'election AND feed:"paris wire"'),
        ("election", {"language": "PT-BR"}, 'election AND lang:"pt-br"'),
        (None, {"language": "de"}, "lang:de"),
        (
            "a OR b",
            {"site": "x.example", "language": "en"},
            '(a OR b) AND site:"x.example" AND lang:en',
        ),
        (None, {"site": "   "}, None),
    ],
)
def test_filters_are_query_clauses(
    query: str | None, filters: dict[str, str], reads: str | None
) -> None:
    node = filtered_query(
        parse_query(query) if query else None,
        site=filters.get("site", ""),
        feed=filters.get("feed", ""),
        language=filters.get("language", ""),
    )

    assert (str(node) if node is not None else None) == reads
    if reads is not None:
        assert parse_query(reads) == node  # the filter means what the same query means


def test_a_topic_filter_is_its_query() -> None:
    node = filtered_query(parse_query("vote"), topic=parse_query("election OR poll"))

    assert str(node) == "vote AND (election OR poll)"


@pytest.mark.parametrize(
    ("end", "cursor", "bound"),
    [
        (None, None, None),
        ((AT, 0), None, (AT, 0)),
        (None, encode_cursor(AT, 7), (AT, 7)),
        ((AT, 0), encode_cursor(AT, 7), (AT, 0)),  # a cursor from a later range
        ((AT, 0), encode_cursor(datetime(2024, 9, 1, tzinfo=UTC), 3),
         (datetime(2024, 9, 1, tzinfo=UTC), 3)),
    ],
)  # fmt: skip
def test_the_tighter_bound_wins(
    end: tuple[datetime, int] | None, cursor: str | None, bound: tuple[datetime, int] | None
) -> None:
    assert later_bound(end, cursor) == bound


def test_a_foreign_cursor_is_refused() -> None:
    with pytest.raises(UsageError, match="cursor: 'abc' is not a cursor monitor gave"):
        later_bound(None, "abc")


def test_every_match_is_the_backtest_in_one_pass(engine: Engine) -> None:
    seen = [AT - timedelta(minutes=n // 3) for n in range(40)]  # three at a time tie
    with Session(engine) as session, session.begin():
        for n, when in enumerate(seen):
            add_article(session, f"{'Election' if n % 3 else 'Weather'} report {n}", seen=when)
    node = parse_query("election")
    since = AT - timedelta(days=1)
    with Session(engine) as session:
        whole = backtest(session, node, since=since, limit=1000)
        expected = [(s.article.id, s.hit.terms) for s in whole.samples]
        end = (whole.samples[5].article.first_seen_at, whole.samples[5].article.id or 0)

    found = [
        (s.article.id, s.hit.terms) for s in every_match(engine, node, since=since, batch_size=4)
    ]
    after = [s.article.id for s in every_match(engine, node, since=since, before=end, batch_size=7)]

    assert len(expected) == 26
    assert found == expected
    assert after == [article_id for article_id, _ in expected[6:]]
