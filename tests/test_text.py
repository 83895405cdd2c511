"""Text folding shared by article keys and topic matching."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import fold


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Election", "election"),
        ("ÉLECTION", "election"),
        ("Müller straße", "muller strasse"),
        ("São Paulo", "sao paulo"),
        ("ﬁnance", "finance"),  # a compatibility ligature
        ("Ｔｏｋｙｏ", "tokyo"),  # full-width letters
        ("Москва́", "москва"),  # a stress mark on Cyrillic
        ("Russia’s", "russia’s"),  # punctuation is left to the word splitter
        ("plain ascii 123", "plain ascii 123"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@given(st.text())
def test_fold_leaves_no_combining_marks_and_is_idempotent(text: str) -> None:
    folded = fold(text)
    assert not any(unicodedata.combining(char) for char in folded)
    assert fold(folded) == folded
