"""CSV cells no spreadsheet runs as formulas, and JSON documents streamed in pieces."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from monitor.exports import csv_chunks, csv_text, json_document_chunks, safe_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
        (-5, "-5"),
        (2.5, "2.5"),
        (True, "True"),
        (datetime(2024, 9, 9, 12, 0, tzinfo=UTC), "2024-09-09T12:00:00+00:00"),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_text_reads_back_with_header_and_quoted_cells() -> None:
    rows: list[list[object]] = [["=cmd|' /C calc'!A0", 'say "hi", then go\nhome'], ["-1", 7]]

    text = csv_text(["a", "=b"], rows)

    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "'=b"],
        ["'=cmd|' /C calc'!A0", 'say "hi", then go\nhome'],
        ["'-1", "7"],
    ]
    assert text == "".join(csv_chunks(["a", "=b"], rows))


@pytest.mark.parametrize("items", [[], [{"x": 1}], [{"x": 1}, {"when": datetime(2024, 1, 1)}]])
def test_json_document_chunks_make_one_document(items: list[dict[str, object]]) -> None:
    chunks = list(json_document_chunks({"total": len(items)}, "articles", items))

    document = json.loads("".join(chunks))
    assert document["total"] == len(items)
    assert len(document["articles"]) == len(items)
    assert len(chunks) == len(items) + 2
