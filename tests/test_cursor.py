"""Page cursors round-trip exactly and refuse anything monitor did not write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.cursor import decode_cursor, encode_cursor
from monitor.errors import UsageError


@pytest.mark.parametrize(
    "position",
    [
        (datetime(2024, 9, 9, 12, 0, 0, 123456, tzinfo=UTC), 1),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 2**31 - 1),
        (datetime(2026, 1, 1, tzinfo=UTC), 0),
    ],
)
def test_a_cursor_names_its_position_exactly(position: tuple[datetime, int]) -> None:
    cursor = encode_cursor(*position)

    assert decode_cursor(cursor) == position
    assert cursor.isascii()
    assert "=" not in cursor


@pytest.mark.parametrize(
    "cursor", ["", "x", "%%%", "MTIzNA", "YS5i", "MS4y" * 20, "MTIzLjk5OTk5OTk5OTk5", "LTEuLTE"]
)
def test_a_foreign_cursor_is_refused_in_one_line(cursor: str) -> None:
    with pytest.raises(UsageError, match=r"^cursor: .* is not a cursor monitor gave$"):
        decode_cursor(cursor)
