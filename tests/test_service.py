"""The service keeps going through broken edits: templates and monitor.toml edited while it
runs are reloaded, and a broken edit is logged once while the previous one stays in force."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Match, Topic, utcnow
from monitor.operations import open_database, sync_config
from monitor.service import Service, live_settings
from monitor.settings import load_settings
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article
from tests.utils.smtpserver import SmtpServer

ELECTION = "election-interference"


@pytest.fixture
def service(config: ConfigWriter, smtp_server: SmtpServer) -> Iterator[Service]:
    """A service on the test's database mailing the test's SMTP server, an instant reader."""
    config.smtp_port = smtp_server.port
    config.subscribers = [{"email": "ada@example.org", "instant": True, "topics": [ELECTION]}]
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())
    yield Service(engine, settings)
    engine.dispose()


def add_match(engine: Engine, title: str) -> None:
    """An article first seen now, matched by the election topic."""
    with Session(engine) as session, session.begin():
        topic = session.exec(select(Topic).where(Topic.slug == ELECTION)).one()
        article = add_article(session, title, seen=utcnow() - timedelta(seconds=1))
        session.add(
            Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1, score=1.0)
        )


def tick(service: Service) -> None:
    """A digest tick in an instant period of its own (an instant period is a second long)."""
    time.sleep(1.05)
    asyncio.run(service.digest_tick())


def records(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize(
    ("name", "broken", "where"),
    [
        ("digest.html", "<p>{% for a in x %}</p>\n", "digest.html:1: template error"),
        ("digest_subject.txt", "{{ prefix }} {{ 1/0 }}\n", "digest_subject.txt:1: template error"),
    ],
)
def test_broken_template_edit_is_logged_once_and_mail_keeps_going(
    config: ConfigWriter,
    service: Service,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
    name: str,
    broken: str,
    where: str,
) -> None:
    caplog.set_level(logging.INFO)
    templates = config.directory / "templates"
    templates.mkdir()
    (templates / name).write_text(broken)

    for title in ("Election interference probe opens", "Election interference probe widens"):
        add_match(service.engine, title)
        tick(service)

    subjects = [received.message["Subject"] for received in smtp_server.messages]
    assert subjects == [
        "[monitor] Election interference: Election interference probe opens",
        "[monitor] Election interference: Election interference probe widens",
    ]
    [logged] = records(caplog, "templates not reloaded")
    assert where in logged
    assert "\n" not in logged

    # Fixed: the next tick uses the new template.
    (templates / name).write_text("{{ prefix }} fixed\n" if name.endswith(".txt") else "<p>x</p>")
    add_match(service.engine, "Election interference probe ends")
    tick(service)
    assert len(records(caplog, "templates reloaded")) == 1
    assert len(smtp_server.messages) == 3


def test_broken_monitor_toml_is_logged_once_and_the_settings_stay(
    config: ConfigWriter, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = config.directory / "monitor.toml"
    before = service.settings
    path.write_text(path.read_text() + "\n[digest\nsubject_prefix = '[news]'\n")

    asyncio.run(service.poll_tick())
    asyncio.run(service.poll_tick())

    [logged] = records(caplog, "settings not reloaded")
    assert f"{path}:" in logged
    assert "not valid TOML" in logged
    assert service.settings is before

    path.write_text(config.toml() + "\n[digest]\nsubject_prefix = '[news]'\n")
    asyncio.run(service.poll_tick())
    assert service.settings.digest.subject_prefix == "[news]"
    assert service.settings.config_dir == before.config_dir
    assert len(records(caplog, "settings reloaded")) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_settings_read_at_start_wait_for_a_restart(config: ConfigWriter, tmp_path: Path) -> None:
    current = config.settings()
    config.database_url = f"sqlite:///{tmp_path / 'other.db'}"
    config.extra_toml = '[schedule]\ntick = "5s"\n[digest]\nmax_articles = 7\n'
    fresh = load_settings(config.write())

    live, waiting = live_settings(current, fresh)

    assert waiting == ["database", "schedule.tick"]
    assert live.database == current.database
    assert live.schedule.tick == current.schedule.tick
    assert live.digest.max_articles == 7
    assert live.config_path == current.config_path
