"""monitor's matcher against SQLite FTS5 MATCH, on the subset of queries both languages share.

A few hundred articles are generated from a small vocabulary (accents, decomposed accents,
typographic quotes and apostrophes, punctuation inside words, Cyrillic and Greek, repeated
words) and indexed in an in-memory FTS5 table with the columns ``title`` and ``body`` and the
tokenizer ``unicode61 remove_diacritics 2``. Each query is parsed by monitor, translated from
its tree into FTS5 syntax, and the two must agree on every article.

The shared subset: words, phrases, a prefix ``*`` on a single word or on the last word of a
phrase, AND (and implicit AND), OR, NOT inside an AND that has something positive, NEAR/n
between two words, phrases or OR groups of them (unordered), and ``title:`` / ``text:``
(FTS5 column filters). Differences found, and kept out of the shared subset:

- Folding. monitor folds with Unicode compatibility caseless matching (NFKD + casefold) and
  strips the combining marks of the Latin, Greek and Cyrillic scripts; FTS5's unicode61 lower-
  cases character by character and removes diacritics from Latin letters only. So for monitor
  "Straße" = "strasse", "ﬁnance" = "finance", full-width "Tokyo" = "tokyo", "ⓐbc" = "abc" (FTS5 sees
  the separator "ⓐ" and the word "bc"), Greek "Αθήνα" = "αθηνα" and Cyrillic "ёлка" = "елка",
  "мой" = "мои"; for FTS5 each pair is two different words. Both agree on Latin accents,
  decomposed (NFD) accents, Greek final sigma, "İ", and on "_", apostrophes, hyphens and dots
  separating words. The vocabulary below sticks to what both fold alike.
- NEAR whose two sides can match the same words. FTS5 lets the phrases of a NEAR group overlap:
  NEAR(russia russia, 5) matches a single "russia", NEAR("a b" "b c", 0) matches "a b c".
  monitor needs two separate occurrences, the distance counted between them (a word is not
  near itself). Queries whose NEAR sides share a word (or a prefix of one) are not translated.
- NEAR groups. FTS5's NEAR(a b c, n) holds when all phrases fit in one window; monitor's NEAR
  is binary and chains to the left (a NEAR b NEAR c is (a NEAR b) NEAR c). Only two-sided
  NEARs are compared. FTS5 NEAR takes phrases only: (a OR b) NEAR c is translated as
  NEAR(a c) OR NEAR(b c). ONEAR has no FTS5 counterpart.
- Prefixes. monitor allows a wildcard on any word of a phrase ("elect* interference") and
  requires 3 letters before it; FTS5 only on the last word of a phrase.
- NOT. FTS5's NOT is binary (a NOT b) and cannot start a query; monitor's is unary, allowed
  anywhere inside an AND, and a query that needs none of its words is refused.
- Fields. ``author:`` and the source tests ``site:``, ``feed:``, ``lang:`` have no FTS5 column
  here. Unscoped words look in title and text in both (FTS5: any column).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.topics.matcher import ArticleView, Matcher, TopicRule
from monitor.topics.query import (
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Words,
    parse_query,
)

# Spellings of one word that both FTS5 and monitor fold alike, and the words around them.
_VARIANTS = {
    "election": ["election", "Election", "ELECTION", "élection", "Élection", "E\u0301lection"],
    "elections": ["elections", "Élections"],
    "electoral": ["electoral", "électoral"],
    "elected": ["elected", "re-elected"],
    "russia": ["Russia", "russia", "RUSSIA", "Russia’s", "Russia's"],
    "russian": ["Russian", "russian"],
    "kremlin": ["Kremlin", "kremlin"],
    "interference": ["interference", "Interference"],
    "central": ["central", "Central"],
    "bank": ["bank", "Bank", "BANK"],
    "banks": ["banks"],
    "us": ["U.S.", "u.s."],
    "email": ["e-mail", "E-Mail", "email"],
    "cafe": ["café", "Café", "cafe", "CAFE\u0301"],
    "naive": ["naïve", "naive", "NAÏVE"],
    "zurich": ["Zürich", "zurich", "ZÜRICH"],
    "senor": ["señor", "Señor"],
    "moscow": ["Москва", "москва", "МОСКВА"],
    "moscow-in": ["Москве"],
    "vybory": ["выборы", "Выборы"],
    "ekloges": ["εκλογες", "ΕΚΛΟΓΕΣ"],
    "2024": ["2024"],
}
_FILLERS = [
    *("the", "a", "of", "and", "in", "to", "vote", "votes", "voters", "meddling"),
    *("sanctions", "fake", "news", "said", "today", "rates", "raised", "talks"),
]
_GAPS = [" "] * 12 + [", ", ". ", " — ", " “", "” ", ": ", "\n", " (", ") ", "; ", " - ", "…"]
ARTICLE_COUNT = 300


def _words(rng: random.Random, count: int) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        if words and rng.random() < 0.08:
            words.append(words[-1])  # repeated words
        elif rng.random() < 0.45:
            words.append(rng.choice(rng.choice(list(_VARIANTS.values()))))
        elif rng.random() < 0.15:
            words.extend(["central", "bank"])  # a phrase that occurs
        else:
            words.append(rng.choice(_FILLERS))
    return words


def _text(rng: random.Random, count: int) -> str:
    return "".join(word + rng.choice(_GAPS) for word in _words(rng, count)).strip()


def _articles() -> list[ArticleView]:
    rng = random.Random(20240305)
    articles = [
        ArticleView(_text(rng, rng.randint(2, 9)), _text(rng, rng.randint(10, 60)))
        for _ in range(ARTICLE_COUNT)
    ]
    assert not any("_" in a.title + a.text for a in articles)
    return articles


ARTICLES = _articles()


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """The articles in an in-memory FTS5 table, rowid = index in ARTICLES."""
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE VIRTUAL TABLE articles USING fts5("
        'title, body, tokenize="unicode61 remove_diacritics 2")'
    )
    connection.executemany(
        "INSERT INTO articles (rowid, title, body) VALUES (?, ?, ?)",
        [(index, a.title, a.text) for index, a in enumerate(ARTICLES)],
    )
    yield connection
    connection.close()


# --- translating monitor's tree into FTS5 syntax ---------------------------------------------


class UntranslatableError(Exception):
    """A query outside the subset both languages share."""


_COLUMNS = {"title": "title", "text": "body"}


def to_fts5(node: Node) -> str:
    """The FTS5 expression equivalent to ``node``, or UntranslatableError."""
    if isinstance(node, Words):
        return _phrase(node)
    if isinstance(node, And):
        positive = [to_fts5(c) for c in node.clauses if not isinstance(c, Not)]
        negative = [to_fts5(c.clause) for c in node.clauses if isinstance(c, Not)]
        if not positive:
            raise UntranslatableError("an AND of NOTs")
        expression = "(" + " AND ".join(positive) + ")"
        if negative:
            expression += " NOT (" + " OR ".join(negative) + ")"
        return f"({expression})"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(clause) for clause in node.clauses) + ")"
    if isinstance(node, Near):
        return _near(node)
    if isinstance(node, Field) and node.name in _COLUMNS:
        return f"({_COLUMNS[node.name]} : {to_fts5(node.clause)})"
    raise UntranslatableError(f"no FTS5 counterpart for {node}")


def _phrase(words: Words) -> str:
    if any(token.endswith("*") for token in words.tokens[:-1]):
        raise UntranslatableError("a prefix before the last word of a phrase")
    phrase = '"' + " ".join(token.rstrip("*") for token in words.tokens) + '"'
    return phrase + " *" if words.tokens[-1].endswith("*") else phrase


def _near(node: Near) -> str:
    if node.ordered:
        raise UntranslatableError("ONEAR")
    lefts, rights = _near_side(node.left), _near_side(node.right)
    for left in lefts:
        for right in rights:
            if _may_overlap(left, right):
                raise UntranslatableError("NEAR sides that can match the same words")
    pairs = [f"NEAR({_phrase(a)} {_phrase(b)}, {node.distance})" for a in lefts for b in rights]
    return "(" + " OR ".join(pairs) + ")"


def _near_side(node: Node) -> list[Words]:
    if isinstance(node, Words):
        return [node]
    if isinstance(node, Or):
        return [words for clause in node.clauses for words in _near_side(clause)]
    raise UntranslatableError("FTS5 NEAR takes phrases only")


def _may_overlap(left: Words, right: Words) -> bool:
    return any(_same_word(a, b) for a in left.tokens for b in right.tokens)


def _same_word(a: str, b: str) -> bool:
    """Whether tokens ``a`` and ``b`` (``*`` for a prefix) can match the same word."""
    stem_a, stem_b = a.rstrip("*"), b.rstrip("*")
    if a.endswith("*") and b.endswith("*"):
        return stem_a.startswith(stem_b) or stem_b.startswith(stem_a)
    if a.endswith("*"):
        return stem_b.startswith(stem_a)
    if b.endswith("*"):
        return stem_a.startswith(stem_b)
    return a == b


# --- comparing -------------------------------------------------------------------------------


def _monitor_matches(*nodes: Node) -> list[set[int]]:
    """The articles each query matches, all compiled in one matcher (topics are independent:
    see test_matcher)."""
    matcher = Matcher(TopicRule(i, f"topic-{i}", 1, node) for i, node in enumerate(nodes))
    found: list[set[int]] = [set() for _ in nodes]
    for index, article in enumerate(ARTICLES):
        for hit in matcher.match(article):
            found[hit.topic_id].add(index)
    return found


def _fts5_matches(connection: sqlite3.Connection, expression: str) -> set[int]:
    rows = connection.execute("SELECT rowid FROM articles WHERE articles MATCH ?", (expression,))
    return {rowid for (rowid,) in rows}


def _assert_agree(connection: sqlite3.Connection, query: str, node: Node, ours: set[int]) -> None:
    expression = to_fts5(node)
    theirs = _fts5_matches(connection, expression)
    differ = sorted(ours ^ theirs)
    assert not differ, (
        f"{query!r} as FTS5 {expression!r}: monitor and FTS5 disagree on "
        + "; ".join(
            f"#{i} (monitor {i in ours}) {ARTICLES[i].title!r} / {ARTICLES[i].text!r}"
            for i in differ[:3]
        )
    )


QUERIES = [
    # words, in any of their spellings
    "election",
    "Élection",
    "russia",
    "cafe",
    "café",
    "naïve",
    "zurich",
    "Señor",
    "москва",
    "МОСКВА",
    "εκλογές",
    "ΕΚΛΟΓΕΣ",
    "2024",
    # punctuation inside words: phrases
    "U.S.",
    "e-mail",
    "email",
    "Russia’s",
    # phrases
    '"central bank"',
    "“central bank”",
    '"bank central"',
    '"election interference"',
    '"russia s"',
    '"the election"',
    # prefixes
    "elect*",
    "russ*",
    "моск*",
    "bank*",
    '"central ban*"',
    '"the elect*"',
    # AND, OR, NOT
    "russia election",
    "russia AND kremlin AND election",
    "russia OR kremlin",
    "(russia OR kremlin) AND (election OR vote*)",
    "russia -election",
    "russia NOT kremlin NOT election",
    "elect* -(russia OR kremlin)",
    '"central bank" -rates',
    "(russia -kremlin) OR (kremlin -russia)",
    "russia -(kremlin -election)",
    # NEAR
    "russia NEAR election",
    "russia NEAR/0 election",
    "russia NEAR/1 election",
    "russia NEAR/3 election",
    "election NEAR/3 russia",
    "russ* NEAR/2 elect*",
    '"central bank" NEAR/2 rates',
    '"central bank" NEAR/0 "the election"',
    "(russia OR kremlin) NEAR/2 (election OR vote)",
    "москва NEAR/4 выборы",
    "russia NEAR/2 election -kremlin",
    "russia NEAR/2 election OR kremlin NEAR/2 vote*",
    # fields
    "title:election",
    "text:election",
    "title:russia election",
    "title:(russia OR kremlin) -text:election",
    'title:"central bank"',
    "title:(russia NEAR/5 elect*)",
    "text:(russia NEAR/1 elect*)",
]


@pytest.mark.parametrize("query", QUERIES)
def test_monitor_and_fts5_agree(fts5: sqlite3.Connection, query: str) -> None:
    node = parse_query(query)
    [matched] = _monitor_matches(node)
    _assert_agree(fts5, query, node, matched)
    # Every query tells articles apart: the comparison is not vacuous.
    assert 0 < len(matched) < ARTICLE_COUNT, len(matched)


def test_the_fixtures_hold_what_the_comparison_needs() -> None:
    everything = " ".join(a.title + " " + a.text for a in ARTICLES)
    for needed in ("E\u0301lection", "Russia’s", "U.S.", "“", "Москва", "ΕΚΛΟΓΕΣ", "\n"):
        assert needed in everything


# Random queries of the shared subset, built as trees.
_TOKENS = [
    "election",
    "elections",
    "russia",
    "russian",
    "kremlin",
    "central",
    "bank",
    "the",
    "vote",
    "cafe",
    "москва",
    "εκλογεσ",
    "s",
    "2024",
]
_PREFIXES = ["elect*", "russ*", "ban*", "vot*", "моск*", "caf*"]
_PHRASES = [("central", "bank"), ("russia", "s"), ("u", "s"), ("e", "mail"), ("the", "election")]


@st.composite
def _words_nodes(draw: st.DrawFn) -> Words:
    kind = draw(st.sampled_from(["word", "prefix", "phrase", "phrase-prefix"]))
    if kind == "word":
        return Words((draw(st.sampled_from(_TOKENS)),))
    if kind == "prefix":
        return Words((draw(st.sampled_from(_PREFIXES)),))
    phrase = draw(st.sampled_from(_PHRASES))
    if kind == "phrase-prefix" and len(phrase[-1]) >= 3:
        return Words((*phrase[:-1], phrase[-1] + "*"))
    return Words(phrase)


def _near_sides() -> st.SearchStrategy[Node]:
    return _words_nodes() | st.lists(_words_nodes(), min_size=2, max_size=2).map(
        lambda clauses: Or(tuple(clauses))
    )


def _shared(depth: int) -> st.SearchStrategy[Node]:
    nears = st.builds(Near, _near_sides(), _near_sides(), st.integers(0, 6))
    if depth == 0:
        return _words_nodes() | nears
    inner = _shared(depth - 1)
    return st.one_of(
        _words_nodes(),
        nears,
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: And(tuple(cs))),
        st.tuples(inner, inner).map(lambda pair: And((pair[0], Not(pair[1])))),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: Or(tuple(cs))),
        st.builds(Field, st.sampled_from(["title", "text"]), inner),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(st.lists(_shared(2), min_size=5, max_size=5))
def test_monitor_and_fts5_agree_on_random_queries(
    fts5: sqlite3.Connection, trees: list[Node]
) -> None:
    # Parse the printed trees: the comparison runs on what a user's query text becomes.
    nodes = [node for node in map(_shared_query, trees) if node is not None]
    assume(nodes)
    for node, ours in zip(nodes, _monitor_matches(*nodes), strict=True):
        _assert_agree(fts5, str(node), node, ours)


def _shared_query(tree: Node) -> Node | None:
    """The parsed query of ``tree`` if it is in the shared subset, else None."""
    try:
        node = parse_query(str(tree))
        to_fts5(node)
    except (QuerySyntaxError, UntranslatableError):  # a field inside a field, a pure NOT, ...
        return None
    return node


def test_documented_differences_are_real() -> None:
    """The differences listed above, kept honest: if one goes away, update the docstring."""
    connection = sqlite3.connect(":memory:")
    connection.execute(
        'CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize="unicode61 remove_diacritics 2")'
    )
    rows = ["Straße", "ﬁnance", "Αθήνα", "ёлка", "russia only"]
    connection.executemany("INSERT INTO t (title, body) VALUES (?, '')", [(r,) for r in rows])

    def fts5_has(expression: str) -> bool:
        return bool(connection.execute("SELECT 1 FROM t WHERE t MATCH ?", (expression,)).fetchall())

    for query, text in [
        ("strasse", "Straße"),
        ("finance", "ﬁnance"),
        ("αθηνα", "Αθήνα"),
        ("елка", "ёлка"),
    ]:
        assert Matcher([TopicRule(1, "t", 1, parse_query(query))]).match(ArticleView(text, ""))
        assert not fts5_has(f'"{query}"')
    near = parse_query("russia NEAR/5 russia")
    assert not Matcher([TopicRule(1, "t", 1, near)]).match(ArticleView("russia only", ""))
    assert fts5_has("NEAR(russia russia, 5)")
    connection.close()
