"""Opaque page cursors for newest-first article lists: a (first_seen_at, id) position, encoded.

A cursor names the last article of a page; the next page holds the articles strictly older than
it, ``(first_seen_at, id)`` compared as a pair, so articles first seen in the same microsecond
are neither repeated nor skipped. It carries no rights: a forged one only moves the window.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from monitor.errors import UsageError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Longer than any cursor this module writes, so junk is refused before it is decoded.
MAX_CURSOR_CHARS = 64

Position = tuple[datetime, int]


def encode_cursor(first_seen_at: datetime, article_id: int) -> str:
    """The cursor after the article first seen at ``first_seen_at`` with id ``article_id``."""
    micros = (first_seen_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{micros}.{article_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; UsageError for anything this module did not write."""
    refusal = UsageError(f"cursor: {cursor[:MAX_CURSOR_CHARS]!r} is not a cursor monitor gave")
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise refusal
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros_text, id_text = raw.split(".")
        if not (micros_text.lstrip("-").isdigit() and id_text.isdigit()):
            raise ValueError(raw)
        at = _EPOCH + timedelta(microseconds=int(micros_text))
        article_id = int(id_text)
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise refusal from None
    if article_id > 2**31 - 1:  # ids are 32-bit on PostgreSQL
        raise refusal
    return at, article_id
