"""Signed unsubscribe tokens: who (subscriber id) and which topics, tamper-proof; signed
self-service ("manage") tokens naming a subscriber only; and signed digest tokens naming one
delivery (the page that lists every story of a digest, those the e-mail had no room for too).

A token is the only credential an unsubscribe link carries, so it is signed with the
instance's secret key (``web.secret_key``, or a random key kept in ``web.secret_key_file``).
Tokens do not expire: RFC 8058 asks that a one-click link keep working for as long as the
mail may be read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadData, URLSafeSerializer

from monitor.errors import ConfigError, MonitorError
from monitor.settings import WebSettings

# Distinct salts keep a signature made for one purpose from being accepted for another.
_SALT = "monitor.unsubscribe.v1"
_MANAGE_SALT = "monitor.manage.v1"
_DIGEST_SALT = "monitor.digest.v1"


class InvalidTokenError(MonitorError):
    """An unsubscribe token was altered, forged, or signed with another key."""


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    """What an unsubscribe link names: the subscriber and the topics of one digest."""

    subscriber_id: int
    topic_ids: tuple[int, ...]


def make_unsubscribe_token(secret_key: str, *, subscriber_id: int, topic_ids: Iterable[int]) -> str:
    """A URL-safe token naming ``subscriber_id`` and ``topic_ids``, signed with ``secret_key``."""
    payload = {"s": subscriber_id, "t": sorted(set(topic_ids))}
    return str(URLSafeSerializer(secret_key, salt=_SALT).dumps(payload))


def read_unsubscribe_token(secret_key: str, token: str) -> UnsubscribeToken:
    """The subscriber and topics a token names; InvalidTokenError unless it is genuine."""
    try:
        payload = URLSafeSerializer(secret_key, salt=_SALT).loads(token)
    except BadData:
        raise InvalidTokenError("unsubscribe: this link is not valid (altered or forged)") from None
    subscriber_id, topic_ids = _fields(payload)
    return UnsubscribeToken(subscriber_id, topic_ids)


def make_manage_token(secret_key: str, *, subscriber_id: int) -> str:
    """A URL-safe token for the self-service page of ``subscriber_id``, signed."""
    return str(URLSafeSerializer(secret_key, salt=_MANAGE_SALT).dumps({"s": subscriber_id}))


def read_manage_token(secret_key: str, token: str) -> int:
    """The subscriber id a self-service token names; InvalidTokenError unless it is genuine."""
    try:
        payload = URLSafeSerializer(secret_key, salt=_MANAGE_SALT).loads(token)
    except BadData:
        raise InvalidTokenError("manage: this link is not valid (altered or forged)") from None
    subscriber_id = payload.get("s") if isinstance(payload, dict) else None
    if type(subscriber_id) is not int:
        raise InvalidTokenError("manage: this link is not valid (unexpected content)")
    return subscriber_id


def make_digest_token(secret_key: str, *, delivery_id: int, subscriber_id: int) -> str:
    """A URL-safe token for the page of one delivered digest, signed."""
    payload = {"d": delivery_id, "s": subscriber_id}
    return str(URLSafeSerializer(secret_key, salt=_DIGEST_SALT).dumps(payload))


def read_digest_token(secret_key: str, token: str) -> tuple[int, int]:
    """(delivery id, subscriber id) a digest token names; InvalidTokenError unless genuine."""
    try:
        payload = URLSafeSerializer(secret_key, salt=_DIGEST_SALT).loads(token)
    except BadData:
        raise InvalidTokenError("digest: this link is not valid (altered or forged)") from None
    if isinstance(payload, dict):
        delivery_id, subscriber_id = payload.get("d"), payload.get("s")
        if type(delivery_id) is int and type(subscriber_id) is int:
            return delivery_id, subscriber_id
    raise InvalidTokenError("digest: this link is not valid (unexpected content)")


def _fields(payload: object) -> tuple[int, tuple[int, ...]]:
    # A genuine signature over an unexpected shape means a key was shared with something else.
    if isinstance(payload, dict):
        subscriber_id, topic_ids = payload.get("s"), payload.get("t")
        if (
            type(subscriber_id) is int
            and isinstance(topic_ids, list)
            and all(type(t) is int for t in topic_ids)
        ):
            return subscriber_id, tuple(topic_ids)
    raise InvalidTokenError("unsubscribe: this link is not valid (unexpected content)")


def load_secret_key(web: WebSettings) -> str:
    """``web.secret_key``, or the key kept in ``web.secret_key_file`` (made once, mode 0600)."""
    if web.secret_key:
        return web.secret_key
    path = web.secret_key_file
    existing = _read_key(path)
    if existing:
        return existing
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_key_file(path, secrets.token_urlsafe(48))
    except OSError as exc:
        raise ConfigError(str(path), f"web.secret_key_file: cannot create: {exc}") from None
    # Whoever won a race to create the file, every process now uses its key.
    key = _read_key(path)
    if not key:
        raise ConfigError(str(path), "web.secret_key_file: the file is empty")
    return key


def _read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(str(path), f"web.secret_key_file: cannot read: {exc}") from None


def _create_key_file(path: Path, key: str) -> None:
    """Write the key to a private temporary file, then link it into place unless one exists.

    Linking is atomic, so a second process starting at the same moment never reads a
    half-written key, and never replaces the first one's.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
