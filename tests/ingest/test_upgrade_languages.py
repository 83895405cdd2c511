"""Upgrading an archive: articles stored before detection get their detected language."""

from __future__ import annotations

from sqlmodel import Session, select

from monitor.db import create_db_engine, upgrade_database
from monitor.models import Article
from tests.ingest.test_upgrade_identity import ARTICLE, FEED, NOW, article_row, migrate_to

# (title, summary, declared language, the language the upgrade should detect)
STORED = [
    (
        "Выборы в Молдове",
        "Центральная избирательная комиссия сообщила о нарушениях на избирательных участках.",
        "en",
        "ru",
    ),
    (
        "Вибори в Україні",
        "Центральна виборча комісія повідомила про порушення на виборчих дільницях країни.",
        "",
        "uk",
    ),
    (
        "Officials warn of interference",
        "Election officials warned on Tuesday of a foreign campaign to sway the vote.",
        "de",
        "en",
    ),
    ("Итоги", "", "ru", ""),  # too short to tell: lang: keeps using the declared "ru"
]


def test_upgrade_detects_the_language_of_stored_articles(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate_to(engine, "0014")
    rows = [
        article_row(n, f"key-{n}", None, "", title=title, summary=summary, language=declared)
        for n, (title, summary, declared, _expected) in enumerate(STORED)
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

    with Session(engine) as session:
        found = {a.title: a.detected_language for a in session.exec(select(Article))}
    assert found == {title: expected for title, _s, _d, expected in STORED}
    engine.dispose()
