"""Migration 0018 on an existing install: the review tables arrive empty beside the stored
articles (every match starts new), and a downgrade removes them and nothing else."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlmodel import Session, select

from monitor.db import MIGRATIONS_DIR, create_db_engine, upgrade_database
from monitor.models import Article, Match, ReviewState
from monitor.review.inbox import InboxFilter, inbox_page
from monitor.review.store import set_reviews
from tests.review.data import DAY, NOW, match
from tests.utils.factories import add_article, add_topic


def _alembic(engine_url: str, action: str, revision: str) -> None:
    engine = create_db_engine(engine_url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def test_an_install_at_0016_upgrades_and_downgrades(db_url: str) -> None:
    _alembic(db_url, "upgrade", "0016")
    engine = create_db_engine(db_url)
    try:
        assert "review" not in inspect(engine).get_table_names()
        with Session(engine) as session, session.begin():
            topic = add_topic(session, "votes", "election")
            article = add_article(session, "Election night", seen=NOW.replace(day=8))
            match(session, article, topic)
            ids = (topic.id or 0, article.id or 0)
        upgrade_database(engine)
        with Session(engine) as session:
            [item] = inbox_page(session, InboxFilter(ids[0], DAY, DAY)).items
        assert item.state == ReviewState.NEW
        with Session(engine) as session, session.begin():
            set_reviews(session, topic_id=ids[0], article_ids=[ids[1]],
                        state=ReviewState.REVIEWED, note="ok", by="ada", now=NOW)  # fmt: skip
    finally:
        engine.dispose()

    _alembic(db_url, "downgrade", "0016")
    engine = create_db_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert not {"review", "review_event"} & tables
        with Session(engine) as session:
            assert len(session.exec(select(Article)).all()) == 1
            assert len(session.exec(select(Match)).all()) == 1
        upgrade_database(engine)
        assert {"review", "review_event"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
