"""Admin accounts, sessions and sign-in: hashing, throttling, cookies, redirects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import UsageError
from monitor.web.auth import (
    SessionCodec,
    WebSession,
    check_password,
    check_username,
    hash_password,
    password_matches,
    set_password,
)
from tests.web.site import (
    NOW,
    PASSWORD,
    USER,
    Site,
    add_admin,
    csrf_of,
    make_app,
    sign_in,
    web_settings,
)


def test_passwords_are_argon2id_hashes() -> None:
    hashed = hash_password(PASSWORD)

    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert password_matches(hashed, PASSWORD)
    assert not password_matches(hashed, PASSWORD + "!")
    assert not password_matches("not a hash", PASSWORD)


@pytest.mark.parametrize(
    ("username", "ok"),
    [("ada", True), ("ada.lovelace@example.org", True), ("", False), ("-ada", False),
     ("ada lovelace", False), ("<script>", False)],
)  # fmt: skip
def test_user_names(username: str, ok: bool) -> None:
    if ok:
        assert check_username(username) == username
    else:
        with pytest.raises(UsageError):
            check_username(username)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(UsageError, match="at least 10"):
        check_password("short")


@pytest.mark.parametrize(
    ("tamper", "valid"),
    [
        (lambda value: value, True),
        (lambda value: value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), False),
        (lambda value: "x" + value, False),
        (lambda _value: "", False),
    ],
    ids=["intact", "signature changed", "payload changed", "empty"],
)
def test_session_cookies_are_signed(tamper: object, valid: bool) -> None:
    codec = SessionCodec("key", lifetime=timedelta(hours=1))
    session = WebSession("nonce", "token")
    value = tamper(codec.dump(session))  # type: ignore[operator]

    assert (codec.load(value) == session) is valid


def test_a_session_signed_with_another_key_is_refused() -> None:
    mine = SessionCodec("key", lifetime=timedelta(hours=1))
    theirs = SessionCodec("other key", lifetime=timedelta(hours=1))

    assert mine.load(theirs.dump(WebSession("nonce", "token"))) is None


def test_pages_need_a_signed_in_admin(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        response = client.get("/topics?x=1", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/topics%3Fx%3D1"
        assert sign_in(client).status_code == 303
        assert client.get("/topics").status_code == 200


@pytest.mark.parametrize(
    ("next_target", "landing"),
    [("/feeds", "/feeds"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
     ("/\\evil.example", "/")],
)  # fmt: skip
def test_sign_in_goes_back_only_to_this_site(
    engine: Engine, tmp_path: Path, next_target: str, landing: str
) -> None:
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login",
            data={"csrf_token": token, "username": USER, "password": PASSWORD,
                  "next": next_target},
            follow_redirects=False,
        )  # fmt: skip

    assert response.status_code == 303
    assert response.headers["location"] == landing


@pytest.mark.parametrize(
    ("web", "secure"),
    [({}, False), ({"base_url": "https://monitor.example.org"}, True),
     ({"secure_cookies": "always"}, True)],
    ids=["plain http", "https base url", "forced"],
)  # fmt: skip
def test_session_cookie_flags(
    engine: Engine, tmp_path: Path, web: dict[str, str], secure: bool
) -> None:
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path, **web))) as client:
        response = sign_in(client)

    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert ("; secure" in cookie) is secure


def test_a_wrong_password_is_refused(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        response = sign_in(client, password="wrong password")
        after = client.get("/", follow_redirects=False)

    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert after.status_code == 303


def test_sign_ins_are_throttled_for_the_client_that_failed(engine: Engine, tmp_path: Path) -> None:
    add_admin(engine)
    settings = web_settings(tmp_path, login_max_failures=3, login_window="15m")
    with TestClient(make_app(engine, settings)) as client:
        failures = [sign_in(client, password=f"wrong {n}").status_code for n in range(3)]
        # Even the right password waits now: guessing must not go on at full speed.
        throttled = sign_in(client)
    with TestClient(make_app(engine, settings, now=NOW + timedelta(minutes=2))) as later:
        allowed = sign_in(later)

    assert failures == [401, 401, 401]
    assert throttled.status_code == 429
    assert "Too many failed sign-ins from here. Try again in 1 minute." in throttled.text
    assert allowed.status_code == 303


def test_a_password_change_ends_open_sessions(site: Site) -> None:
    assert site.client.get("/", follow_redirects=False).status_code == 200
    with Session(site.engine) as session, session.begin():
        set_password(session, username=USER, password="a new long password")

    assert site.client.get("/", follow_redirects=False).status_code == 303


def test_sign_out(site: Site) -> None:
    response = site.client.post("/logout", data={"csrf_token": site.csrf()}, follow_redirects=False)

    assert response.headers["location"] == "/login"
    assert site.client.get("/", follow_redirects=False).status_code == 303
