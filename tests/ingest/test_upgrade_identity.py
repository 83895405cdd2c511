"""Upgrading an archive: link keys follow the new canonical form, old backlog is flagged.

An archive made before the new canonical form holds articles under keys of the old one (a
U+FFFD where a Latin-1 or cp1251 escape was, dot segments, tracking parameters now dropped).
Without the data migration, the next poll listing those same items stored each again.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.db import MIGRATIONS_DIR, create_db_engine, upgrade_database
from monitor.ingest.canonical import article_keys
from monitor.ingest.sketch import StoryRules
from monitor.ingest.store import save_new_articles
from monitor.models import Article, UTCDateTime
from monitor.sources.parse import ParsedEntry

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
TRACKING = frozenset({"src"})  # the installation's own tracking parameter (stories settings)
FFFD = "%EF%BF%BD" * 5

FEED = sa.table(
    "feed",
    *(sa.column(name, sa.Text()) for name in ("url", "title", "site_url", "category", "state")),
    *(sa.column(name, sa.Text()) for name in ("interval_reason",)),
    sa.column("id", sa.Integer()),
    sa.column("interval_seconds", sa.Integer()),
    sa.column("error_count", sa.Integer()),
    sa.column("next_check_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
)
ARTICLE = sa.table(
    "article",
    *(sa.column(name, sa.Text()) for name in ("key_hash", "canonical_url", "guid", "url")),
    *(sa.column(name, sa.Text()) for name in ("title", "summary", "content", "author")),
    *(sa.column(name, sa.Text()) for name in ("language", "content_hash")),
    sa.column("feed_id", sa.Integer()),
    sa.column("first_seen_at", UTCDateTime()),
    sa.column("published_at", UTCDateTime()),
)

# (link as the feed gives it, its canonical form before the upgrade, the key's suffix)
OLD_LINKS = [
    (
        "https://example.ru/news?src=rss&tag=%CF%F3%F2%E8%ED",
        f"https://example.ru/news?tag={FFFD}",
        "",
    ),
    ("https://news.example.com/a/./b/../story-3", "https://news.example.com/a/./b/../story-3", ""),
    (
        "https://www.dw.com/en/france-arrests-nine/a-75995188?maca=en-rss-en-all-1573-rdf",
        "https://www.dw.com/en/france-arrests-nine/a-75995188?maca=en-rss-en-all-1573-rdf",
        "",
    ),
    ("https://blog.example/./comments/#c1", "https://blog.example/./comments/", "#c1"),
    ("https://blog.example/./comments/#c2", "https://blog.example/./comments/", "#c2"),
    ("https://news.example.com/unchanged", "https://news.example.com/unchanged", ""),
]
PLAIN = "https://blog.example/post/"
REF_RSS = "https://blog.example/post/?ref=rss"  # now the same page as PLAIN, which has its key


def old_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(n: int, link: str | None, guid: str | None = None) -> ParsedEntry:
    return ParsedEntry(
        guid=guid,
        link=link,
        title=f"Story {n}",
        summary=f"Text of story {n}.",
        content="",
        author="",
        published_at=NOW - timedelta(hours=n),
        updated_at=None,
    )


def migrate_to(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def article_row(
    n: int, key: str, canonical: str | None, url: str, **extra: object
) -> dict[str, object]:
    row: dict[str, object] = {
        "key_hash": key, "canonical_url": canonical, "guid": None, "url": url,
        "title": f"Story {n}", "summary": f"Text of story {n}.", "content": "", "author": "",
        "language": "", "content_hash": f"h{n}", "feed_id": 1, "first_seen_at": NOW,
        "published_at": NOW - timedelta(hours=n),
    }  # fmt: skip
    return row | extra


def test_upgrade_rekeys_links_and_flags_old_backlog(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate_to(engine, "0010")
    rows = [
        article_row(n, old_key(f"url:{canonical}{suffix}"), canonical, url)
        for n, (url, canonical, suffix) in enumerate(OLD_LINKS)
    ]
    ref = len(rows)
    rows += [
        article_row(ref, old_key(f"url:{PLAIN}"), PLAIN, PLAIN),
        article_row(ref + 1, old_key(f"url:{REF_RSS}"), REF_RSS, REF_RSS),
        article_row(ref + 2, old_key("guid:1:g-42"), None, "", guid="g-42"),
        # published ten days, one day before first seen, and undated
        article_row(ref + 3, "backlog", None, "", published_at=NOW - timedelta(days=10)),
        article_row(ref + 4, "recent", None, "", published_at=NOW - timedelta(days=1)),
        article_row(ref + 5, "undated", None, "", published_at=None),
    ]
    with engine.begin() as connection:
        connection.execute(
            FEED.insert().values(
                id=1, url="https://feeds.example/rss", title="", site_url="", category="",
                state="active", interval_reason="", interval_seconds=900, error_count=0,
                next_check_at=NOW, created_at=NOW,
            )
        )  # fmt: skip
        connection.execute(ARTICLE.insert(), rows)

    upgrade_database(engine)

    entries = [entry(n, url) for n, (url, _canonical, _suffix) in enumerate(OLD_LINKS)]
    keys = article_keys(entries, feed_id=1, tracking=TRACKING)
    with Session(engine) as session:
        by_title = {a.title: a for a in session.exec(select(Article).order_by(col(Article.id)))}
    stored = {int(title.split()[1]): article for title, article in by_title.items()}
    assert [stored[n].key_hash for n in range(len(OLD_LINKS))] == [k.key_hash for k in keys]
    assert stored[0].canonical_url == "https://example.ru/news?tag=%CF%F3%F2%E8%ED"
    assert stored[1].canonical_url == "https://news.example.com/a/story-3"
    assert stored[3].canonical_url == "https://blog.example/comments/"
    # Its new key is PLAIN's: it keeps the old one, and PLAIN stays the page's article.
    assert stored[ref + 1].key_hash == old_key(f"url:{REF_RSS}")
    assert stored[ref].key_hash == old_key(f"url:{PLAIN}")
    assert stored[ref + 2].key_hash == old_key("guid:1:g-42")
    assert [stored[ref + n].backlog for n in (3, 4, 5)] == [True, False, False]
    assert not any(stored[n].backlog for n in range(ref + 3))

    # The feed lists the same items again, and the second cp1251 tag the old form had merged.
    again = [*entries, entry(20, "https://example.ru/news?tag=%D8%EE%E9%E3%F3"), entry(21, PLAIN)]
    with Session(engine) as session, session.begin():
        new = save_new_articles(
            session,
            feed_id=1,
            entries=again,
            now=NOW + timedelta(hours=1),
            rules=StoryRules(tracking_parameters=TRACKING),
        )
        assert [article.title for article in new] == ["Story 20"]
    engine.dispose()
