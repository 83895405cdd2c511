"""Sessions end on the server, and sign-in throttling slows a guesser without locking out the
owner: over a real uvicorn server where clients and addresses matter, TestClient elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app as cli_app
from monitor.delivery.render import build_environment
from monitor.models import AdminSession, LoginAttempt
from monitor.settings import Settings
from monitor.web import create_app
from monitor.web.auth import SessionCodec, Throttle, token_hash
from monitor.web.pages import COOKIE
from tests.utils.config import ConfigWriter
from tests.web.site import (
    NOW,
    PASSWORD,
    SECRET,
    USER,
    add_admin,
    csrf_of,
    fake_resolve,
    make_app,
    sign_in,
    web_settings,
)
from tests.web.test_app import serving

LIFETIME = timedelta(hours=12)
# Generous: on a busy machine (a whole test run on two cores) an answer may take seconds, and a
# timeout would fail the test for nothing it checks.
HTTP_TIMEOUT = 60.0


def http_client(base: str, **options: Any) -> httpx.Client:
    """An HTTP client of the server at ``base``, as a browser would be."""
    return httpx.Client(base_url=base, timeout=HTTP_TIMEOUT, **options)


@dataclass
class Clock:
    """A clock the test moves forward."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def clocked_app(engine: Engine, settings: Settings, clock: Clock) -> FastAPI:
    return create_app(settings, engine, env=build_environment(), clock=clock, resolve=fake_resolve)


def sessions(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(AdminSession)).one())


def http_sign_in(
    client: httpx.Client, *, password: str = PASSWORD, address: str | None = None
) -> httpx.Response:
    """Sign in through the form over HTTP; ``address`` is the client as a proxy names it."""
    headers = {"X-Forwarded-For": address} if address else {}
    token = csrf_of(client.get("/login", headers=headers).text)
    return client.post(
        "/login",
        data={"csrf_token": token, "username": USER, "password": password, "next": "/"},
        headers=headers,
    )


def cookie_session(value: str | None) -> str | None:
    """The session token a cookie value carries (None: anonymous or unreadable)."""
    loaded = SessionCodec(SECRET, lifetime=LIFETIME).load(value)
    return loaded.token if loaded else None


# --- sessions end on the server ------------------------------------------------------------


@pytest.fixture
def server(engine: Engine, tmp_path: Path) -> Iterator[str]:
    add_admin(engine)
    with serving(make_app(engine, web_settings(tmp_path))) as base:
        yield base


def test_sign_out_ends_the_session_for_a_saved_copy_of_the_cookie(
    server: str, engine: Engine
) -> None:
    with http_client(server) as browser:
        assert http_sign_in(browser).status_code == 303
        saved = browser.cookies[COOKIE]
        with http_client(server, cookies={COOKIE: saved}) as thief:
            before = thief.get("/", follow_redirects=False)
            assert sessions(engine) == 1
            out = browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/").text)})
            after = thief.get("/feeds", follow_redirects=False)

    assert before.status_code == 200
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert sessions(engine) == 0
    # The old cookie opens nothing, and is not refreshed into a signed-in one.
    assert after.status_code == 303
    assert after.headers["location"] == "/login?next=/feeds"
    assert cookie_session(after.cookies.get(COOKIE)) is None
    assert cookie_session(saved) is not None  # what was stolen is intact, and still refused


def test_signing_out_ends_only_that_session(server: str, engine: Engine) -> None:
    with http_client(server) as laptop, http_client(server) as phone:
        assert http_sign_in(laptop).status_code == 303
        assert http_sign_in(phone).status_code == 303
        laptop.post("/logout", data={"csrf_token": csrf_of(laptop.get("/").text)})

        assert laptop.get("/", follow_redirects=False).status_code == 303
        assert phone.get("/", follow_redirects=False).status_code == 200
    assert sessions(engine) == 1


def test_users_passwd_ends_every_open_session(
    engine: Engine, config: ConfigWriter, tmp_path: Path
) -> None:
    add_admin(engine)
    path = config.write()
    with (
        TestClient(make_app(engine, web_settings(tmp_path))) as one,
        TestClient(make_app(engine, web_settings(tmp_path))) as two,
    ):
        assert sign_in(one).status_code == 303
        assert sign_in(two).status_code == 303
        result = CliRunner().invoke(
            cli_app,
            ["--config", str(path), "users", "passwd", USER, "--password-stdin"],
            input="a brand new password\n",
        )
        assert result.exit_code == 0, result.output
        assert "open sessions ended" in result.output

        assert one.get("/", follow_redirects=False).status_code == 303
        assert two.get("/", follow_redirects=False).status_code == 303
        assert sign_in(one, password="a brand new password").status_code == 303
    assert sessions(engine) == 1


@pytest.mark.parametrize(
    ("later", "status"),
    [(timedelta(hours=11), 200), (LIFETIME - timedelta(seconds=1), 200), (LIFETIME, 303),
     (LIFETIME + timedelta(days=3), 303)],
)  # fmt: skip
def test_a_session_ends_after_its_idle_lifetime(
    engine: Engine, tmp_path: Path, later: timedelta, status: int
) -> None:
    add_admin(engine)
    clock = Clock()
    # The cookie's signature is timed by the real clock (fresh here): the server's row decides.
    with TestClient(clocked_app(engine, web_settings(tmp_path), clock)) as client:
        assert sign_in(client).status_code == 303
        clock.now = NOW + later
        response = client.get("/", follow_redirects=False)

    assert response.status_code == status


def test_each_page_renews_the_session(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    clock = Clock()
    with TestClient(clocked_app(engine, web_settings(tmp_path), clock)) as client:
        assert sign_in(client).status_code == 303
        steps = []
        # Ten pages, eleven hours apart: each within the lifetime of the one before.
        for _ in range(10):
            clock.now += timedelta(hours=11)
            steps.append(client.get("/", follow_redirects=False).status_code)

    assert steps == [200] * 10


def test_the_session_table_keeps_only_a_hash_of_the_token(server: str, engine: Engine) -> None:
    with http_client(server) as browser:
        http_sign_in(browser)
        token = cookie_session(browser.cookies[COOKIE])
    with Session(engine) as session:
        rows = session.exec(select(AdminSession)).all()

    assert token is not None
    assert [row.token_hash for row in rows] == [token_hash(token)]
    assert token not in rows[0].token_hash


# --- throttling by client and account, with growing delays ------------------------------------


def test_a_guesser_elsewhere_does_not_lock_the_owner_out(server: str, engine: Engine) -> None:
    with http_client(server) as guesser:
        guesses = [
            http_sign_in(guesser, password=f"guess {n}", address="203.0.113.66").status_code
            for n in range(12)
        ]
        # The right password from the guesser's client still waits.
        lucky = http_sign_in(guesser, address="203.0.113.66")
    with http_client(server) as owner:
        own = http_sign_in(owner, address="198.51.100.7")
        page = owner.get("/", follow_redirects=False)

    assert guesses[:5] == [401] * 5
    assert set(guesses[5:]) == {429}
    assert lucky.status_code == 429
    assert own.status_code == 303
    assert page.status_code == 200


def test_delays_grow_with_each_failure_over_the_limit(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    clock = Clock()
    # A day's window: no failure leaves it during the test, so each one counts.
    settings = web_settings(tmp_path, login_max_failures=3, login_window="1d")
    client_address = ("192.0.2.10", 50000)
    waits: list[str] = []
    with TestClient(clocked_app(engine, settings, clock), client=client_address) as client:
        for _ in range(3):
            assert sign_in(client, password="wrong").status_code == 401
        for expected in (1, 2, 4, 8, 16, 32, 64, 128):
            refused = sign_in(client, password="wrong")
            assert refused.status_code == 429
            waits.append(refused.text.split("Try again in ", 1)[1].split(".", 1)[0])
            # Just before the wait is over: still refused; then one more wrong try counts.
            clock.now += timedelta(minutes=expected) - timedelta(seconds=1)
            assert sign_in(client, password="wrong").status_code == 429
            clock.now += timedelta(seconds=1)
            assert sign_in(client, password="wrong").status_code == 401

    assert waits == ["1 minute", "2 minutes", "4 minutes", "8 minutes", "16 minutes",
                     "32 minutes", "64 minutes", "128 minutes"]  # fmt: skip


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(2, timedelta(0)), (3, timedelta(minutes=1)), (4, timedelta(minutes=2)),
     (5, timedelta(minutes=4)), (6, timedelta(minutes=8)), (7, timedelta(minutes=15)),
     (40, timedelta(minutes=15))],
)  # fmt: skip
def test_the_wait_doubles_up_to_the_window(engine: Engine, failures: int, wait: timedelta) -> None:
    throttle = Throttle(max_failures=3, window=timedelta(minutes=15))
    with Session(engine) as session, session.begin():
        for _ in range(failures):
            throttle.record_failure(session, username=USER, address="192.0.2.1", now=NOW)
        mine = throttle.wait(session, username=USER, address="192.0.2.1", now=NOW)
        elsewhere = throttle.wait(session, username=USER, address="192.0.2.2", now=NOW)

    assert mine == wait
    assert elsewhere == timedelta(0)


def test_one_client_trying_many_names_is_slowed_too(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    settings = web_settings(tmp_path, login_max_failures=2, login_window="15m")
    statuses = []
    with TestClient(make_app(engine, settings), client=("192.0.2.20", 1)) as sprayer:
        for n in range(10):
            token = csrf_of(sprayer.get("/login").text)
            response = sprayer.post(
                "/login",
                data={"csrf_token": token, "username": f"user{n}", "password": "Winter2024!"},
            )
            statuses.append(response.status_code)
    with TestClient(make_app(engine, settings), client=("192.0.2.21", 1)) as owner:
        own = sign_in(owner)

    # Two failures per name are allowed, and eight (4 x 2) per client across names.
    assert statuses == [401] * 8 + [429] * 2
    assert own.status_code == 303


def test_signing_in_forgets_the_clients_failures(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    settings = web_settings(tmp_path, login_max_failures=3, login_window="15m")
    with TestClient(make_app(engine, settings)) as client:
        for _ in range(2):
            assert sign_in(client, password="typo").status_code == 401
        assert sign_in(client).status_code == 303
        client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
        later = [sign_in(client, password="typo").status_code for _ in range(3)]
    with Session(engine) as session:
        left = session.exec(select(func.count()).select_from(LoginAttempt)).one()

    # Three new typos are allowed again (the two before the sign-in no longer count).
    assert later == [401, 401, 401]
    assert left == 3
