"""Names across scripts: ``translit:Шойгу`` also matches Shoigu, Shoygu, Shojgu, Schojgu, Šojgu.

Sits beside the matcher, before it compiles (DESIGN.md: topics): ``monitor.topics.forms``
expands a ``translit:`` word into the word and its Latin spellings. They come from two
libraries of transliteration tables: translitua (Russian: ICAO passports, GOST, ISO 9, ALA-LC,
BGN/PCGN, ...; Ukrainian: the 2010 national system, passports, and the German, French and
British customs, ...) and iuliia (27 Russian schemes, among them Wikipedia's, Yandex's and the
French passport's "Choigou"). A word with letters only Ukrainian has (і, ї, є, ґ) takes the
Ukrainian tables, one with letters only Russian has (ы, э, ъ, ё) the Russian ones, any other
both. Spellings no table makes (the German press's "Schoigu") go in a topic's
``names`` list, which matches each name given and its transliterations.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from monitor.text import fold
from monitor.topics.forms import word_languages


@cache
def transliterations(word: str) -> frozenset[str]:
    """``word`` (folded Cyrillic) and its Latin spellings, folded."""
    import iuliia
    import translitua

    word = fold(word)
    tables: list[Any] = []
    languages = word_languages(word)
    spellings = {word}
    if "ru" in languages:
        tables.extend(translitua.ALL_RUSSIAN)
        for name in iuliia.schemas.names():
            schema = iuliia.schemas.get(name)
            if schema is not None:
                spellings.add(fold(schema.translate(word)))
    if "uk" in languages:
        tables.extend(translitua.ALL_UKRAINIAN)
    for table in tables:
        spellings.add(fold(translitua.translit(word, table)))
    # An apostrophe or prime for the soft sign splits a word in two ("simon'yan"): the same
    # spelling without it is how the press writes it ("simonyan").
    spellings.update(
        spelling.replace("'", "").replace("\u2019", "").replace("\u02b9", "").replace("\u2032", "")
        for spelling in list(spellings)
    )
    return frozenset(spellings)


def names_query(names: list[str]) -> str:
    """The query a topic's ``names`` list stands for: any of the names, a Cyrillic one in any
    of its forms (Лавров, Лаврова, Лаврову) and transliterations."""
    clauses = []
    for name in names:
        words = name.split()
        quoted = '"' + " ".join(words) + '"' if len(words) > 1 else words[0]
        if any("\u0400" <= char <= "\u04ff" for char in name):
            forms = '"' + " ".join("~" + word for word in words) + '"'
            clauses.append(f"{forms} OR translit:{quoted}")
        else:
            clauses.append(quoted)
    return " OR ".join(clauses)
