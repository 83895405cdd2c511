"""CSV exports: a cell that would start a spreadsheet formula comes back quoted, text intact."""

from __future__ import annotations

import csv
import io

import pytest

from monitor.exports import csv_text, safe_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain title", "plain title"),
        ("a = b", "a = b"),
        ("", ""),
        (None, ""),
        (42, "42"),
        (-5, "'-5"),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_text_reads_back_with_every_cell_safe() -> None:
    text = csv_text(["id", "=title"], [[1, '=HYPERLINK("http://x","y")'], [2, 'a, "quoted"\nline']])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["id", "'=title"],
        ["1", '\'=HYPERLINK("http://x","y")'],
        ["2", 'a, "quoted"\nline'],
    ]
    assert text.endswith("\r\n")
