"""A new feed's backlog through the real parts: poll, list, report, digest, topic feed, web page.

A feed added today lists 20 election stories published months and days ago and 2 of today.
The old ones are stored, listed and searchable, marked as backlog; the report counts today's
two, the digest sends today's two, the topic feed shows today's two.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.models import Article, Topic, utcnow
from monitor.web.atom import latest_entries
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer
from tests.web.site import add_admin, make_app, sign_in, web_settings

runner = CliRunner()
OLD = [timedelta(days=days) for days in (400, 300, 200, 100, 60, 30, 20, 10, 7, 5)] * 2
FRESH = [timedelta(hours=1), timedelta(minutes=20)]


def feed(now: datetime) -> bytes:
    ages = [*OLD, *FRESH]
    items = "".join(
        f"<item><title>{'Fresh' if age in FRESH else 'Archived'} report {n} on election "
        f"interference</title><link>https://news.example.com/story-{n}</link>"
        f"<guid>story-{n}</guid><pubDate>{format_datetime(now - age)}</pubDate>"
        "<description>Officials warned of election interference.</description></item>"
        for n, age in enumerate(ages)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>New Outlet</title>'
        f"<link>https://news.example.com/</link>{items}</channel></rss>"
    ).encode()


def invoke(config: Path, *args: str) -> str:
    result = runner.invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def text_of(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_new_feeds_backlog_is_kept_but_not_news(
    config: ConfigWriter, feed_server: FeedServer, tmp_path: Path
) -> None:
    config.feeds = [feed_server.add("/new.rss", feed(utcnow()))]
    path = config.write()

    polled = invoke(path, "poll")
    assert "│           22 │      22 │" in polled  # every item stored and tagged

    listed = invoke(path, "articles", "list", "--limit", "50")
    assert "22 articles" in listed
    assert listed.count("(backlog)") == 20
    searched = invoke(path, "search", "Archived", "--limit", "50")
    assert searched.count("backlog (published well before first seen)") == 20

    today = utcnow().date().isoformat()
    report = json.loads(invoke(path, "report", "--date", today, "--format", "json"))
    [votes] = [t for t in report["topics"] if t["slug"] == "election-interference"]
    assert (votes["articles"], votes["stories"]) == (2, 2)

    assert "sent to analyst@example.org" in invoke(path, "digest", "send")
    [eml] = list(config.outbox.glob("*.eml"))
    body = text_of(eml.read_bytes())
    assert len(re.findall(r"Fresh report \d+ on election interference", body)) == 2
    assert "Archived" not in body

    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            topic = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
            shown = [entry.title for entry in latest_entries(session, topic)]
            archived = session.exec(select(Article).where(Article.backlog)).first()
        assert sorted(shown) == ["Fresh report 20 on election interference",
                                 "Fresh report 21 on election interference"]  # fmt: skip
        assert archived is not None
        add_admin(engine)
        with TestClient(make_app(engine, web_settings(tmp_path), now=utcnow())) as client:
            assert sign_in(client).status_code == 303
            page = client.get(f"/articles/{archived.id}").text
            found = client.get("/search", params={"q": "archived"}).text
            dashboard = client.get("/").text
        assert ">backlog</span>" in page
        assert found.count(">backlog</span>") == 20
        # Today's matches so far, on the dashboard: today's news only.
        assert '>Election interference</a></td><td class="num">2</td>' in dashboard
    finally:
        engine.dispose()
