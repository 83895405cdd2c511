"""Hostile characters and links never reach a terminal, a mail reader, a page or an API client.

A feed served on 127.0.0.1 is polled for real; its stored article is then given what an older
version of monitor stored from a hostile feed (the parse edge strips it now, see
tests/sources/test_parse_edges.py): ANSI escapes, a BEL, a right-to-left override and a
``javascript:`` link. Every output must show the text without them: ``articles list`` and
``report --format text`` on the terminal, both parts of a digest sent to a real SMTP server, the
article page, the topic's Atom feed and the JSON API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.delivery.render import build_environment
from monitor.models import Article, Story
from monitor.settings import load_settings
from monitor.web import create_app
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer
from tests.utils.smtpserver import SmtpServer
from tests.web.site import add_admin, sign_in

runner = CliRunner()
TOKEN = "hostile-test-token"
RLO = "\u202e"
TITLE = f"Invoice \x1b[31mURGENT\x1b[0m election interference gnp{RLO}.exe\x07\x1b]0;owned\x07"
SHOWN = "Invoice URGENT election interference gnp.exe"
URL = "javascript:alert(document.cookie)"
SUMMARY = f"Officials\x1b[2J warn of election interference.\rFORGED LINE{RLO}"
# Nothing of these may appear in any output.
FORBIDDEN = ("\x1b", "\x07", "\x9b", RLO, "javascript:", "\r")


def clean_feed() -> bytes:
    """What the feed serves: one ordinary item matching the election-interference topic."""
    now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile News</title>'
        "<link>https://news.example.com/</link><item><title>Officials warn of election "
        "interference</title><link>https://news.example.com/a/1</link>"
        f"<description>Officials warn of election interference.</description><pubDate>{now}"
        "</pubDate></item></channel></rss>"
    ).encode()


def invoke(config: Path, *args: str) -> str:
    result = runner.invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def assert_clean(where: str, text: str) -> None:
    found = [repr(f) for f in FORBIDDEN if f in text]
    assert not found, f"{where} shows {', '.join(found)}"


@pytest.fixture
def polled(config: ConfigWriter, feed_server: FeedServer, smtp_server: SmtpServer) -> Path:
    """The feed polled and tagged; then its article and story hold the hostile values."""
    config.feeds = [feed_server.add("/hostile.rss", clean_feed())]
    config.smtp_port = smtp_server.port
    config.extra_toml = (
        f'[web]\nsecret_key = "hostile-test-key"\napi_token = "{TOKEN}"\n\n'
        '[reports]\nreviewers = ["reviewer@example.org"]\n'
    )
    path = config.write()
    invoke(path, "poll")
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session, session.begin():
            article = session.exec(select(Article)).one()
            article.title, article.url, article.summary = TITLE, URL, SUMMARY
            article.author = f"Eve{RLO}\x1b[5m"
            session.add(article)
            story = session.get(Story, article.story_id)
            assert story is not None
            story.title = TITLE
            session.add(story)
    finally:
        engine.dispose()
    return path


def test_the_terminal_gets_no_escapes(polled: Path) -> None:
    listed = invoke(polled, "articles", "list")
    day = datetime.now(UTC).date().isoformat()
    report = invoke(polled, "report", "--date", day, "--format", "text")
    searched = invoke(polled, "search", "election interference")

    for where, output in [("articles list", listed), ("report", report), ("search", searched)]:
        assert_clean(where, output)
    assert SHOWN in listed
    assert SHOWN in report


def test_a_digest_carries_no_escapes_and_no_script_link(
    polled: Path, smtp_server: SmtpServer
) -> None:
    invoke(polled, "digest", "send")

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0].message
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    # Mail lines end in CRLF on the wire: only a CR of its own is the feed's.
    text_body = text.get_content().replace("\r\n", "\n")
    html_body = html.get_content().replace("\r\n", "\n")
    assert_clean("the subject", str(message["Subject"]))
    assert_clean("the text part", text_body)
    assert_clean("the HTML part", html_body)
    assert SHOWN in text_body


def test_the_report_mail_carries_no_escapes(polled: Path, smtp_server: SmtpServer) -> None:
    day = datetime.now(UTC).date().isoformat()
    invoke(polled, "report", "--date", day, "--email", "--out", str(polled.parent / "r.txt"))

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0].message
    assert isinstance(message, EmailMessage)
    for kind in ("plain", "html"):
        part = message.get_body((kind,))
        assert part is not None
        body = part.get_content().replace("\r\n", "\n")
        assert_clean(f"the report's {kind} part", body)
        assert SHOWN in body


def test_pages_atom_and_api_show_no_hostile_characters_or_links(polled: Path) -> None:
    settings = load_settings(polled)
    engine = create_db_engine(settings.database.url)
    try:
        add_admin(engine)
        with Session(engine) as session:
            article_id = session.exec(select(Article.id)).one()
        application = create_app(settings, engine, env=build_environment())
        with TestClient(application) as client:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            api_list = client.get("/api/articles", headers=auth)
            api_one = client.get(f"/api/articles/{article_id}", headers=auth)
            assert sign_in(client).status_code == 303
            page = client.get(f"/articles/{article_id}")
            atom = client.get("/topics/election-interference/feed.atom")
    finally:
        engine.dispose()

    assert [r.status_code for r in (api_list, api_one, page, atom)] == [200, 200, 200, 200]
    assert (api_list.json()["articles"][0]["url"], api_one.json()["url"]) == ("", "")
    assert api_one.json()["title"] == SHOWN
    for where, body in [("the API", api_list.text + api_one.text), ("the page", page.text),
                        ("the Atom feed", atom.text)]:  # fmt: skip
        assert_clean(where, body)
    assert SHOWN in page.text
