"""A signed-in web UI for tests: settings, an admin account, a TestClient that signs in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery.render import build_environment
from monitor.operations import build_daily_report, retag_pending_topics
from monitor.settings import FetchSettings, Settings, WebSettings
from monitor.web import create_app
from monitor.web.auth import add_user
from tests.utils.factories import add_article, add_topic

SECRET = "web-ui-test-secret"
NOW = datetime(2024, 9, 9, 12, 0, tzinfo=UTC)
USER = "ada"
PASSWORD = "correct horse battery"
# Names the fake resolver knows; anything else does not resolve.
DNS = {"intranet.example": ["10.1.2.3"], "news.example": ["93.184.216.34"]}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fake_resolve(host: str) -> list[str]:
    """Addresses from DNS above: tests need no real name service."""
    return DNS.get(host, [])


def web_settings(tmp_path: Path, **web: Any) -> Settings:
    """Settings as tests use them: a fixed key, 127.0.0.0/8 allowed for feeds."""
    return Settings(
        web=WebSettings(secret_key=SECRET, secret_key_file=tmp_path / "key", **web),
        fetch=FetchSettings(allow_networks=["127.0.0.0/8"]),
    )


def make_app(engine: Engine, settings: Settings, *, now: datetime = NOW) -> FastAPI:
    """The whole app on ``engine`` with a fixed clock and the fake resolver."""
    return create_app(
        settings, engine, env=build_environment(), clock=lambda: now, resolve=fake_resolve
    )


def add_admin(engine: Engine, username: str = USER, password: str = PASSWORD) -> None:
    """Store an admin account."""
    with Session(engine) as session, session.begin():
        add_user(session, username=username, password=password, now=NOW)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclass
class Site:
    """A TestClient signed in as the admin, with the page's CSRF token at hand."""

    client: TestClient
    engine: Engine

    def csrf(self, path: str = "/") -> str:
        """The CSRF token the forms of ``path`` carry."""
        return csrf_of(self.client.get(path).text)

    def post(
        self, path: str, data: dict[str, Any], files: dict[str, Any] | None = None
    ) -> httpx.Response:
        """POST a form with the session's CSRF token."""
        data = {"csrf_token": self.csrf(), **data}
        response: httpx.Response = self.client.post(path, data=data, files=files)
        return response


def sign_in(client: TestClient, username: str = USER, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form; return the response (a 303 to / on success)."""
    token = csrf_of(client.get("/login").text)
    response: httpx.Response = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password, "next": "/"},
        follow_redirects=False,
    )
    return response


REPORT_DAY = date(2024, 9, 8)
QUERY = '"election interference" OR meddl*'


def seed(engine: Engine, settings: Settings) -> None:
    """Articles over the last two weeks (a burst on REPORT_DAY), a topic tagged with them and
    the stored report of REPORT_DAY."""
    with Session(engine) as session, session.begin():
        topics = [
            add_topic(session, "election-interference", QUERY, tagged_version=0),
            add_topic(session, "central-banks", '"central bank" OR "interest rate*"',
                      tagged_version=0),
        ]  # fmt: skip
        for topic in topics:
            # Watched for a month: the report has a usual level to call a spike against.
            topic.created_at = NOW - timedelta(days=30)
            session.add(topic)
        for back in range(1, 15):
            seen = NOW - timedelta(days=back)
            votes = "Agencies describe foreign meddling in the vote."
            add_article(session, f"Officials warn of election interference, day {back}",
                        seen=seen, summary=votes)  # fmt: skip
            rates = "The central bank kept rates unchanged."
            add_article(session, f"Central bank holds interest rates, week {back}",
                        seen=seen, summary=rates)  # fmt: skip
        for n in range(8):
            add_article(session, f"Meddling claims multiply ({n})",
                        seen=datetime(2024, 9, 8, 9, n, tzinfo=UTC),
                        summary="Regulators investigate meddling in the election.")  # fmt: skip
    retag_pending_topics(engine, settings, now=NOW)
    build_daily_report(engine, settings, day=REPORT_DAY, now=NOW)
