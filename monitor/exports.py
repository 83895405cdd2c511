"""CSV and JSON exports of articles for people's spreadsheets and scripts (web, CLI).

Every CSV cell goes through ``safe_cell``: a cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return is prefixed with a single quote, so a feed's title such as
``=HYPERLINK(...)`` is text in Excel, LibreOffice and Google Sheets, never a formula (OWASP's
"CSV injection"). Numbers stay numbers: ``-5`` from an int is not a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

# What spreadsheets read as the start of a formula (tab and CR: some strip them, then see "=").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _line(cells: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document (RFC 4180, CRLF line ends) with a header line, every cell safe."""
    return "".join(csv_chunks(header, rows))


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The CSV document of ``csv_text`` a line at a time, for streaming responses."""
    yield _line(header)
    for row in rows:
        yield _line(row)


def _json_default(value: object) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_value(value: object) -> str:
    """``value`` as compact JSON text (datetimes as ISO 8601)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def json_document_chunks(
    head: dict[str, object], key: str, items: Iterable[object]
) -> Iterator[str]:
    """One JSON object, ``head``'s fields and then ``key``: the array of ``items``, streamed an
    item at a time (the document is whole only once the last chunk is sent)."""
    opening = json_value({**head, key: []})
    yield opening[:-2]  # the object up to its array's "[": without the closing "]}"
    for number, item in enumerate(items):
        yield ("," if number else "") + json_value(item)
    yield "]}"
