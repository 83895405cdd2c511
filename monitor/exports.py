"""CSV exports that a spreadsheet opens safely: a cell that would start a formula is quoted.

Spreadsheets run a cell starting with ``= + - @`` (or a tab or carriage return, which some
strip first) as a formula (OWASP "CSV injection"); a leading single quote makes it text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as CSV cell text, prefixed with a single quote when it could start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (RFC 4180, CRLF line ends) of ``header`` and ``rows``, every cell safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
