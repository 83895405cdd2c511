"""``monitor users add|list|passwd``: admin accounts from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.web.auth import get_user, password_matches
from tests.utils.config import ConfigWriter

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    return writer.write()


def users(config: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), "users", *args], input=stdin)
    return result.exit_code, result.output


def stored_hash(tmp_path: Path, username: str) -> str | None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with Session(engine) as session:
            user = get_user(session, username)
            return user.password_hash if user else None
    finally:
        engine.dispose()


def test_add_list_and_change_a_password(config: Path, tmp_path: Path) -> None:
    added = users(config, "add", "ada", "--password-stdin", stdin="first long password\n")
    listed = users(config, "list")
    changed = users(config, "passwd", "ada", "--password-stdin", stdin="second long password\n")

    assert added == (0, "added user ada\n")
    assert "ada" in listed[1]
    assert "never" in listed[1]
    assert changed == (0, "changed the password of ada; their open sessions ended\n")
    hashed = stored_hash(tmp_path, "ada")
    assert hashed is not None
    assert hashed.startswith("$argon2id$")
    assert password_matches(hashed, "second long password")
    assert not password_matches(hashed, "first long password")


def test_the_password_is_asked_for_twice(config: Path, tmp_path: Path) -> None:
    code, _ = users(config, "add", "bob", stdin="a long password\na long password\n")

    assert code == 0
    hashed = stored_hash(tmp_path, "bob")
    assert hashed is not None
    assert password_matches(hashed, "a long password")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "ada", "--password-stdin"], "short\n", "at least 10 characters"),
        (["add", "bad name", "--password-stdin"], "a long password\n", "not a usable user name"),
        (["add", "ada", "--password-stdin"], "\n", "no password on standard input"),
        (["passwd", "nobody", "--password-stdin"], "a long password\n", "no user 'nobody'"),
    ],
)
def test_mistakes_are_reported(config: Path, args: list[str], stdin: str, message: str) -> None:
    code, output = users(config, *args, stdin=stdin)

    assert code != 0
    assert message in output


def test_a_taken_name_is_refused(config: Path) -> None:
    users(config, "add", "ada", "--password-stdin", stdin="first long password\n")
    code, output = users(config, "add", "ada", "--password-stdin", stdin="another password\n")

    assert code != 0
    assert "user 'ada' exists already" in output
