"""Word forms: ``~выборы`` matches выборы, выборов, выборам, выборах, выборами.

Sits beside the matcher, before it compiles (DESIGN.md: topics). The query parser marks a word
written ``~word`` (its token starts with ``~``); ``expand_query`` replaces each marked word by
an OR of every form of it, so the matcher's one Aho-Corasick pass finds them as it finds any
word, and a plain word keeps its exact meaning. The forms come from dictionaries shipped inside
the wheels, never downloaded:

- Russian and Ukrainian: pymorphy3 with the OpenCorpora (ru) and LanguageTool (uk) dictionaries;
  its lexemes include irregular forms a stem cannot reach (``друг``, ``друзья``);
- English: simplemma's dictionary, read backwards (form -> lemma becomes lemma -> forms).

A word's language is read from its letters: Cyrillic words take their Russian and Ukrainian
forms (only those of a language whose dictionary knows the word, when one does), Latin words
their English ones. The word as written is taken for the dictionary form when it is one
(``~выборы`` is the plural noun "elections", not ``выбор``, "a choice"), else the likeliest
reading of it is. ``python -m benchmarks languages`` measures this against a stemmer on real
Russian text.

``word_forms(word, lang)`` and ``lemmas(word, lang)`` are pure (cached) functions of folded
words, for the search index as well as the matcher.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from monitor.text import fold, split_words
from monitor.topics.query import (
    FORMS,
    TRANSLIT,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Words,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from monitor.topics.matcher import TopicRule

LANGUAGES = ("ru", "uk", "en")
# A phrase of several marked words expands to every combination of their variants: past this
# many the query is refused (two verbs of 150 forms each would make 22,500 phrases).
MAX_PHRASES = 2000
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_UKRAINIAN_ONLY = frozenset("іїєґ")
_RUSSIAN_ONLY = frozenset("ыэъ")


def word_languages(word: str) -> tuple[str, ...]:
    """The languages whose forms a query word may take, from its letters."""
    if not _CYRILLIC.search(word):
        return ("en",)
    letters = set(word)
    if letters & _UKRAINIAN_ONLY:
        return ("uk",)
    if letters & _RUSSIAN_ONLY:
        return ("ru",)
    return ("ru", "uk")


@cache
def _morph(lang: str) -> Any:
    """pymorphy3's analyzer for ``lang``, loaded once per process (0.2 s, 15 MB for ru)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang=lang)


@cache
def _english_forms_by_lemma() -> Mapping[str, tuple[str, ...]]:
    """simplemma's English dictionary reversed: lemma -> its other forms (0.5 s and some
    25 MB, once per process that expands an English ~word)."""
    from simplemma.strategies import DefaultDictionaryFactory

    dictionary = DefaultDictionaryFactory().get_dictionary("en")
    forms: dict[str, list[str]] = {}
    for form in dictionary:
        # Most forms are lower-case ASCII already: fold only the others.
        lemma = dictionary[form]
        lemma = lemma if lemma.islower() and lemma.isascii() else fold(lemma)
        word = form if form.islower() and form.isascii() else fold(form)
        if word != lemma:
            forms.setdefault(lemma, []).append(word)
    return {lemma: tuple(words) for lemma, words in forms.items()}


def knows(word: str, lang: str) -> bool:
    """Whether ``lang``'s dictionary has ``word`` (folded)."""
    if lang == "en":
        from simplemma import is_known

        return bool(is_known(word, lang="en")) or word in _english_forms_by_lemma()
    return any(parse.is_known for parse in _morph(lang).parse(word))


@cache
def lemmas(word: str, lang: str) -> frozenset[str]:
    """The dictionary forms ``word`` may be of, in ``lang`` (the word itself when unknown)."""
    word = fold(word)
    if lang == "en":
        import simplemma

        return frozenset({word, fold(simplemma.lemmatize(word, lang="en"))})
    if lang not in ("ru", "uk"):
        return frozenset({word})
    parses = _readings(word, lang)
    return frozenset(fold(parse.normal_form) for parse in parses)


def _readings(word: str, lang: str) -> list[Any]:
    """The parses of ``word`` to take forms from: those whose dictionary form is the word
    itself if there are any, else those of the likeliest dictionary form."""
    parses = _morph(lang).parse(word)
    known = [parse for parse in parses if parse.is_known] or parses[:1]
    itself = [parse for parse in known if fold(parse.normal_form) == word]
    if itself:
        return itself
    likeliest = known[0].normal_form
    return [parse for parse in known if parse.normal_form == likeliest]


@cache
def word_forms(word: str, lang: str) -> frozenset[str]:
    """Every form of ``word`` in ``lang``, folded, the word itself included."""
    word = fold(word)
    if lang == "en":
        by_lemma = _english_forms_by_lemma()
        found = {word}
        for lemma in lemmas(word, "en"):
            found.add(lemma)
            found.update(by_lemma.get(lemma, ()))
        return frozenset(found)
    if lang not in ("ru", "uk"):
        return frozenset({word})
    found = {word}
    for parse in _readings(word, lang):
        found.update(fold(form.word) for form in parse.lexeme)
    return frozenset(found)


def query_word_forms(word: str) -> frozenset[str]:
    """The forms ``~word`` matches: in each language of its letters that knows it (all of
    them when none does)."""
    word = fold(word)
    languages = word_languages(word)
    knowing = [lang for lang in languages if knows(word, lang)] or list(languages)
    return frozenset().union(*(word_forms(word, lang) for lang in knowing))


# --- expanding queries --------------------------------------------------------------------


def token_variants(token: str) -> list[tuple[str, ...]]:
    """What one query token stands for, each as the words it is in text."""
    from monitor.topics.names import transliterations

    if token.startswith(FORMS):
        words = sorted(query_word_forms(token[len(FORMS) :]))
    elif token.startswith(TRANSLIT):
        words = sorted(transliterations(token[len(TRANSLIT) :]))
    else:
        return [(token,)]
    variants = (tuple(split_words(word)) for word in words)
    return list(dict.fromkeys(variant for variant in variants if variant))


@dataclass(frozen=True, slots=True)
class Variants(Or):
    """The words a marked word or phrase stands for: an OR that explains itself as written."""

    written: str = ""

    def __str__(self) -> str:
        return self.written


def expand_words(node: Words) -> Node:
    """``node`` with its marked tokens replaced: itself if none is, else an OR of phrases."""
    if not any(token.startswith((FORMS, TRANSLIT)) for token in node.tokens):
        return node
    # The exact spelling first, so a hit lists it as the query wrote it when it is there.
    choices = [token_variants(token) for token in node.tokens]
    phrases = (tuple(itertools.chain.from_iterable(pick)) for pick in itertools.product(*choices))
    unique = list(dict.fromkeys(phrases))
    if len(unique) == 1:
        return Words(unique[0])
    return Variants(tuple(Words(tokens) for tokens in unique), str(node))


def expand_query(node: Node) -> Node:
    """``node`` with every ``~word`` and ``translit:`` word replaced by the words it stands
    for; a query without them comes back as it is."""
    if isinstance(node, Words):
        return expand_words(node)
    if isinstance(node, And | Or):
        clauses = tuple(expand_query(clause) for clause in node.clauses)
        if all(new is old for new, old in zip(clauses, node.clauses, strict=True)):
            return node
        return type(node)(_flatten(type(node), clauses))
    if isinstance(node, Not):
        clause = expand_query(node.clause)
        return node if clause is node.clause else Not(clause)
    if isinstance(node, Near):
        left, right = expand_query(node.left), expand_query(node.right)
        if left is node.left and right is node.right:
            return node
        return Near(left, right, node.distance, node.ordered)
    if isinstance(node, Field):
        clause = expand_query(node.clause)
        return node if clause is node.clause else Field(node.name, clause)
    return node


def _flatten(kind: type[And] | type[Or], clauses: Iterable[Node]) -> tuple[Node, ...]:
    flat: list[Node] = []
    for clause in clauses:
        flat.extend(clause.clauses if type(clause) is kind else (clause,))
    return tuple(flat)


def expand_rule(rule: TopicRule) -> TopicRule:
    """``rule`` with its query expanded (see ``expand_query``)."""
    query = expand_query(rule.query)
    return rule if query is rule.query else replace(rule, query=query)


def _marked_words(node: Node) -> Iterator[Words]:
    if isinstance(node, Words):
        if any(token.startswith((FORMS, TRANSLIT)) for token in node.tokens):
            yield node
    elif isinstance(node, And | Or):
        for clause in node.clauses:
            yield from _marked_words(clause)
    elif isinstance(node, Not | Field):
        yield from _marked_words(node.clause)
    elif isinstance(node, Near):
        yield from _marked_words(node.left)
        yield from _marked_words(node.right)


def check_expansion(node: Node, query: str) -> None:
    """Refuse a query whose marked phrases would expand to more than MAX_PHRASES phrases."""
    for words in _marked_words(node):
        count = 1
        for token in words.tokens:
            count *= len(token_variants(token))
        if count > MAX_PHRASES:
            raise QuerySyntaxError(
                f"{words} stands for {count:,} phrases (at most {MAX_PHRASES:,}): "
                "put ~ on fewer of its words",
                query,
                max(0, query.find(words.tokens[0].lstrip(FORMS + TRANSLIT))),
            )
