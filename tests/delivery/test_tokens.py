"""Unsubscribe tokens: signed, tamper-evident, and a signing key made once and kept private."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from monitor.delivery.tokens import (
    InvalidTokenError,
    load_secret_key,
    make_unsubscribe_token,
    read_unsubscribe_token,
)
from monitor.settings import WebSettings

KEY = "k" * 32


@pytest.mark.parametrize(
    ("subscriber_id", "topic_ids", "expected"),
    [
        (1, [1, 2], (1, 2)),
        (42, [7, 3, 7], (3, 7)),
        (5, [], ()),
    ],
)
def test_a_token_names_the_subscriber_and_topics(
    subscriber_id: int, topic_ids: list[int], expected: tuple[int, ...]
) -> None:
    token = make_unsubscribe_token(KEY, subscriber_id=subscriber_id, topic_ids=topic_ids)

    found = read_unsubscribe_token(KEY, token)

    assert (found.subscriber_id, found.topic_ids) == (subscriber_id, expected)
    assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()


def _reencoded(payload: bytes, token: str) -> str:
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{token.split('.')[1]}"


GOOD = make_unsubscribe_token(KEY, subscriber_id=1, topic_ids=[1, 2])


@pytest.mark.parametrize(
    "token",
    [
        _reencoded(b'{"s":2,"t":[1,2]}', GOOD),  # another subscriber
        _reencoded(b'{"s":1,"t":[1,2,3]}', GOOD),  # more topics
        # A changed signature character (not the last: its low bits are only padding).
        GOOD[:-5] + ("A" if GOOD[-5] != "A" else "B") + GOOD[-4:],
        GOOD.split(".")[0],
        make_unsubscribe_token("another key", subscriber_id=1, topic_ids=[1, 2]),
        "",
        "....",
    ],
)
def test_an_altered_or_forged_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError, match="not valid"):
        read_unsubscribe_token(KEY, token)


def test_a_genuine_signature_over_another_shape_is_refused() -> None:
    from itsdangerous import URLSafeSerializer

    token = URLSafeSerializer(KEY, salt="monitor.unsubscribe.v1").dumps({"s": "1", "t": [1]})

    with pytest.raises(InvalidTokenError, match="unexpected content"):
        read_unsubscribe_token(KEY, token)


def test_a_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    web = WebSettings(secret_key="configured", secret_key_file=tmp_path / "key")

    assert load_secret_key(web) == "configured"
    assert not (tmp_path / "key").exists()


def test_without_a_key_one_is_made_once_private_and_kept(tmp_path: Path) -> None:
    web = WebSettings(secret_key_file=tmp_path / "var" / "secret_key")

    first = load_secret_key(web)
    second = load_secret_key(web)

    assert first == second
    assert len(first) >= 32
    path = tmp_path / "var" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip() == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]


def test_an_existing_key_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("from the file\n")

    assert load_secret_key(WebSettings(secret_key_file=path)) == "from the file"
