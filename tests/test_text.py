"""Text folding and word splitting shared by article keys, topic queries and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import DIACRITICS, fold, split_words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Election", "election"),
        ("ÉLECTION", "election"),
        ("E\u0301lection", "election"),  # decomposed (NFD) input folds like composed
        ("Müller straße", "muller strasse"),
        ("São Paulo", "sao paulo"),
        ("ﬁnance", "finance"),  # a compatibility ligature
        ("Ｔｏｋｙｏ", "tokyo"),  # full-width letters
        ("Москва́", "москва"),  # a stress mark on Cyrillic
        ("Мой Ўзбек їжак", "мой ўзбек їжак"),  # short i, short u, yi: letters of their own
        ("ёлка", "елка"),  # yo is commonly written ye: folded together
        ("ЁЛКА", "елка"),  # Cyrillic diaeresis
        ("Αθήνα", "αθηνα"),  # Greek tonos
        ("ΟΔΟΣ", "οδοσ"),  # capital sigma ...
        ("οδος", "οδοσ"),  # ... and final sigma fold alike
        ("İstanbul", "istanbul"),
        # The Devanagari virama is part of the spelling and is kept.
        ("हिन्दी", "हिन्दी"),
        ("Russia’s", "russia’s"),  # punctuation is left to the word splitter
        ("plain ascii 123", "plain ascii 123"),
        ("", ""),
        # Invisible characters inside a word are removed, not read as a space.
        ("Пу\u200bтин", "путин"),  # zero-width space
        ("вы\u200dборы", "выборы"),  # zero-width joiner
        ("Kreml\u200cin", "kremlin"),  # zero-width non-joiner
        ("пропа\u00adганда", "пропаганда"),  # soft hyphen
        ("\ufeffкремль", "кремль"),  # byte-order mark
        # A word in two scripts is written in one: the lookalikes of the other are replaced.
        ("выбоpы", "выборы"),  # Latin p in a Cyrillic word
        ("BЫБOPЫ", "выборы"),  # Latin B, O, P in a Cyrillic capital word
        ("Pyccкий", "русский"),  # mostly Latin letters, but only the Latin ones all have twins
        ("Puтin", "putin"),  # Cyrillic т in a Latin word
        ("Kremlіn", "kremlin"),  # Ukrainian і in a Latin word
        # Words of one script, or two scripts split by punctuation, are left alone.
        ("VPN-сервис", "vpn-сервис"),
        ("iPhone и Android", "iphone и android"),
        ("Шпион 007", "шпион 007"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Election interference", ["Election", "interference"]),
        ("U.S. sanctions", ["U", "S", "sanctions"]),
        ("e-mail", ["e", "mail"]),
        ("Russia’s envoy", ["Russia", "s", "envoy"]),
        ("Russia's envoy", ["Russia", "s", "envoy"]),
        ("“quoted”", ["quoted"]),
        ("snake_case", ["snake", "case"]),  # "_" separates words, as in SQLite FTS5
        ("2024-11-05", ["2024", "11", "05"]),
        ("Выборы в Москве", ["Выборы", "в", "Москве"]),
        ("Εκλογές στην Αθήνα", ["Εκλογές", "στην", "Αθήνα"]),
        ("  \n\t ", []),
        ("", []),
    ],
)
def test_split_words(text: str, expected: list[str]) -> None:
    assert split_words(text) == expected


@given(st.text())
def test_fold_leaves_no_listed_diacritics_and_is_idempotent(text: str) -> None:
    folded = fold(text)
    assert DIACRITICS.search(folded) is None
    assert fold(folded) == folded


@given(st.text(st.characters(codec="ascii")))
def test_fold_of_ascii_is_lower_case(text: str) -> None:
    assert fold(text) == text.lower()


@given(st.text())
def test_split_words_of_folded_text_are_folded_words(text: str) -> None:
    for word in split_words(fold(text)):
        assert word
        assert "_" not in word
        assert split_words(word) == [word]
        assert fold(word) == word
