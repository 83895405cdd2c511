"""The query language: the tree each operator builds, errors with their columns, printing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.topics.query import (
    DEFAULT_NEAR,
    MAX_NEAR,
    MAX_NESTING,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Source,
    Words,
    keywords_query,
    parse_query,
    requires_something,
)


def w(*tokens: str) -> Words:
    """A word (one token) or a phrase (several)."""
    return Words(tokens)


# --- what each operator builds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        # terms, folded: case, diacritics, compatibility forms
        ("election", w("election")),
        ("  Election  ", w("election")),
        ("ÉLECTION", w("election")),
        ("E\u0301lection", w("election")),
        ("Москва", w("москва")),
        ("Εκλογές", w("εκλογεσ")),
        ("2024", w("2024")),
        # operator words in lower case are ordinary words
        ("and", w("and")),
        ("or near not", And((w("or"), w("near"), w("not")))),
        ("Near", w("near")),
        # punctuation inside a word splits it into a phrase, as in article text
        ("U.S.", w("u", "s")),
        ("e-mail", w("e", "mail")),
        ("Russia’s", w("russia", "s")),
        ("Russia's", w("russia", "s")),
        ("election-interference", w("election", "interference")),
        # punctuation standing alone separates clauses and means nothing (a lone minus is an
        # error, below)
        ("Putin / Harris", And((w("putin"), w("harris")))),
        ("a & b ...", And((w("a"), w("b")))),
        # Cyrillic short i is a letter of its own, not i with a breve
        ("мой", w("мой")),
        # quoted phrases, with straight or typographic quotes
        ('"election interference"', w("election", "interference")),
        ("“election interference”", w("election", "interference")),
        ("„Wahl Einmischung“", w("wahl", "einmischung")),
        ("«ingérence électorale»", w("ingerence", "electorale")),
        ('"  Central   BANK "', w("central", "bank")),
        ('"single"', w("single")),
        # trailing wildcard
        ("elect*", w("elect*")),
        ("Élect*", w("elect*")),
        ('"troll farm*"', w("troll", "farm*")),
        ('"elect* interference"', w("elect*", "interference")),
        ("e-mail*", w("e", "mail*")),
        # AND, implicit AND, OR
        ("a AND b", And((w("a"), w("b")))),
        ("a b", And((w("a"), w("b")))),
        ("a b AND c", And((w("a"), w("b"), w("c")))),
        ("a OR b", Or((w("a"), w("b")))),
        ("a OR b OR c", Or((w("a"), w("b"), w("c")))),
        ("a AND b OR c", Or((And((w("a"), w("b"))), w("c")))),
        ("a OR b AND c", Or((w("a"), And((w("b"), w("c")))))),
        ("a OR b c", Or((w("a"), And((w("b"), w("c")))))),
        # NOT and the leading minus
        ("a NOT b", And((w("a"), Not(w("b"))))),
        ("a AND NOT b", And((w("a"), Not(w("b"))))),
        ("a -b", And((w("a"), Not(w("b"))))),
        ("-b a", And((Not(w("b")), w("a")))),
        ('a -"b c"', And((w("a"), Not(w("b", "c"))))),
        ("a -(b OR c)", And((w("a"), Not(Or((w("b"), w("c"))))))),
        ("a NOT NOT b", And((w("a"), Not(Not(w("b")))))),
        ("a-b", w("a", "b")),  # a "-" inside a word is punctuation
        ("(a) -b", And((w("a"), Not(w("b"))))),
        # parentheses
        ("(a OR b) AND c", And((Or((w("a"), w("b"))), w("c")))),
        ("(a OR b) c", And((Or((w("a"), w("b"))), w("c")))),
        ("((a))", w("a")),
        ("a AND (b AND c)", And((w("a"), w("b"), w("c")))),  # flattened
        ("(a OR b) OR c", Or((w("a"), w("b"), w("c")))),
        ("(a AND b) OR (c AND d)", Or((And((w("a"), w("b"))), And((w("c"), w("d")))))),
        # NEAR, ONEAR
        ("a NEAR b", Near(w("a"), w("b"), DEFAULT_NEAR)),
        ("a NEAR/3 b", Near(w("a"), w("b"), 3)),
        ("a NEAR/0 b", Near(w("a"), w("b"), 0)),
        ("a ONEAR/3 b", Near(w("a"), w("b"), 3, ordered=True)),
        ("a ONEAR b", Near(w("a"), w("b"), DEFAULT_NEAR, ordered=True)),
        (f"a NEAR/{MAX_NEAR} b", Near(w("a"), w("b"), MAX_NEAR)),
        ('"a b" NEAR/2 "c d"', Near(w("a", "b"), w("c", "d"), 2)),
        ("(a OR b) NEAR/2 c", Near(Or((w("a"), w("b"))), w("c"), 2)),
        ("a NEAR/2 (b OR cat*)", Near(w("a"), Or((w("b"), w("cat*"))), 2)),
        ("a NEAR/1 b NEAR/2 c", Near(Near(w("a"), w("b"), 1), w("c"), 2)),  # to the left
        ("a NEAR/1 (b NEAR/2 c)", Near(w("a"), Near(w("b"), w("c"), 2), 1)),
        ("a NEAR b c", And((Near(w("a"), w("b")), w("c")))),  # NEAR binds tighter than AND
        ("a NEAR b OR c", Or((Near(w("a"), w("b")), w("c")))),
        ("NOT a NEAR b c", And((Not(Near(w("a"), w("b"))), w("c")))),
        ("U.S. NEAR/2 sanctions", Near(w("u", "s"), w("sanctions"), 2)),
        # scoped fields
        ("title:election", Field("title", w("election"))),
        ("TITLE:election", Field("title", w("election"))),
        ('text:"central bank"', Field("text", w("central", "bank"))),
        ("author:Smith", Field("author", w("smith"))),
        ("title:(a OR b)", Field("title", Or((w("a"), w("b"))))),
        ("title:(a NEAR/2 b)", Field("title", Near(w("a"), w("b"), 2))),
        ("title:a b", And((Field("title", w("a")), w("b")))),  # the field takes one clause
        ("title:a NEAR/2 b", Near(Field("title", w("a")), w("b"), 2)),
        ("-title:a b", And((Not(Field("title", w("a"))), w("b")))),
        # source fields: values kept whole (folded), not split into words
        ("site:example.com", Source("site", "example.com")),
        ("site:Example.COM", Source("site", "example.com")),
        ("feed:BBC", Source("feed", "bbc")),
        ('feed:"BBC  News"', Source("feed", "bbc news")),
        ("feed:bbc.co.uk", Source("feed", "bbc.co.uk")),
        ("lang:en", Source("lang", "en")),
        ("lang:en-GB", Source("lang", "en-gb")),
        ("site:example.com election", And((Source("site", "example.com"), w("election")))),
        ("lang:en -site:x.com", And((Source("lang", "en"), Not(Source("site", "x.com"))))),
        # the example
        (
            '("election interference" OR meddl* OR "influence the election") '
            "AND (Russia* OR Kremlin)",
            And(
                (
                    Or(
                        (
                            w("election", "interference"),
                            w("meddl*"),
                            w("influence", "the", "election"),
                        )
                    ),
                    Or((w("russia*"), w("kremlin"))),
                )
            ),
        ),
        ("Russia NEAR/10 election", Near(w("russia"), w("election"), 10)),
    ],
)
def test_parse(query: str, tree: Node) -> None:
    assert parse_query(query) == tree


# --- errors people can act on --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        # parentheses: the column of the one without its partner
        ("(a OR b", "unbalanced parenthesis", 1),
        ("a OR b)", "unbalanced parenthesis", 7),
        ("x AND (a OR (b AND c)", "unbalanced parenthesis", 7),
        ("(a OR b)) c", "unbalanced parenthesis", 9),
        (")", "unbalanced parenthesis", 1),
        ("()", "empty parentheses", 2),
        ("a ()", "empty parentheses", 4),
        # NEAR
        ("NEAR b", "NEAR needs a term on both sides", 1),
        ("a NEAR", "NEAR needs a term on both sides", 3),
        ("a NEAR/3", "NEAR needs a term on both sides", 3),
        ("a ONEAR", "ONEAR needs a term on both sides", 3),
        ("a NEAR NEAR b", "NEAR needs a term on both sides", 3),
        ("a NEAR -b", "NEAR needs a term on both sides", 3),
        ("a AND NEAR b", "NEAR needs a term on both sides", 7),
        ("(a AND b) NEAR c", "NEAR needs terms, phrases or OR groups on both sides", 11),
        ("a NEAR site:x.com", "NEAR needs terms, phrases or OR groups on both sides", 3),
        ("a NEAR/ b", "NEAR/ needs a number of words, as NEAR/5", 3),
        (f"a NEAR/{MAX_NEAR + 1} b", f"NEAR distance is at most {MAX_NEAR}", 3),
        ("a NEAR/" + "9" * 5000 + " b", f"NEAR distance is at most {MAX_NEAR}", 3),
        # fields
        ("titel:x", 'unknown field "titel" (did you mean "title"?)', 1),
        ("a AND tilte:b", 'unknown field "tilte" (did you mean "title"?)', 7),
        ("auther:x", 'unknown field "auther" (did you mean "author"?)', 1),
        ("color:red", 'unknown field "color" (fields: title, text, author, site, feed, lang)', 1),
        ("title:", "title: needs words after it, as title:election", 1),
        ("a title:)", "title: needs words after it", 3),
        ("title:site:x", "title: needs words after it", 1),
        ("title:(a OR text:b)", "a field inside title: cannot be used", 1),
        ("site:", "site: needs a value, as site:example", 1),
        ('site:"" a', "site: needs a value", 1),
        ("lang:\u0301 a", "lang: needs a value", 1),  # a value that folds to nothing
        ("site:(a) b", "site: needs a value", 1),
        # empty and always-true queries
        ("", "empty query", 1),
        ('""', "quotation marks hold no letters or digits", 1),
        ("...", "empty query", 1),  # punctuation alone separates, and leaves nothing
        ("a NEAR/5x b", "NEAR/ needs a number of words", 3),
        ("a ONEAR/ b", "ONEAR/ needs a number of words", 3),
        ("-a", "the query would match articles with none of its words", 1),
        ("NOT a", "the query would match articles with none of its words", 1),
        ("NOT a NOT b", "the query would match articles with none of its words", 1),
        ("NOT (a OR b)", "the query would match articles with none of its words", 1),
        ("a OR -b", "the query would match articles with none of its words", 1),
        ("title:(NOT a)", "the query would match articles with none of its words", 1),
        # wildcards
        ("el*ect", "a wildcard * may only end a word, as elect*", 1),
        ("*elect", "a wildcard * may only end a word", 1),
        ("a elect**", "a wildcard * may only end a word", 3),
        ("*", "a wildcard needs at least 3 letters before the *", 1),
        ("ab*", "a wildcard needs at least 3 letters before the *", 1),
        ('"troll fa*"', "a wildcard needs at least 3 letters before the *", 1),
        ("U.S.*", "a wildcard needs at least 3 letters before the *", 1),
        # quotation marks
        ('"abc', "unclosed quotation mark", 1),
        ('a "b c', "unclosed quotation mark", 3),
        ("a “b c", "unclosed quotation mark", 3),
        # AND, OR and NOT at the ends
        ("AND a", "AND needs a term on both sides", 1),
        ("OR a", "OR needs a term on both sides", 1),
        ("a AND", "AND needs a clause on both sides", 3),
        ("a OR", "OR needs a clause on both sides", 3),
        ("a OR OR b", "OR needs a clause on both sides", 3),
        ("a AND OR b", "AND needs a clause on both sides", 3),
        ("(a OR) b", "OR needs a clause on both sides", 4),
        ("a NOT", "NOT needs a clause after it", 3),
        ("a -)", "- needs a clause after it", 3),
        # a lone minus: "iraq - bomb" used to mean iraq AND bomb, excluding nothing
        ("iraq - bomb", "a lone - excludes nothing: write -bomb (no space) or NOT bomb", 6),
        ("Putin - Harris", "a lone - excludes nothing: write -Harris (no space)", 7),
        ('a - "b c"', 'write -"b c" (no space) or NOT "b c" to exclude it, or leave the - out', 3),
        ("iraq -", "a lone - excludes nothing", 6),
        ("iraq – bomb", "a lone – excludes nothing: write -bomb", 6),  # en dash
        ("iraq — bomb", "a lone — excludes nothing", 6),  # em dash
        ("iraq \u2212 bomb", "a lone \u2212 excludes nothing", 6),  # minus sign
        ("(iraq - bomb)", "a lone - excludes nothing", 7),
        # nesting beyond any real query: an error, not a RecursionError
        ("(" * 500 + "a" + ")" * 500, "the query nests too deeply", MAX_NESTING + 1),
        ("NOT " * 1000 + "a", "the query nests too deeply", 4 * MAX_NESTING + 1),
        ("a" + " NEAR b" * 1000, "the query nests too deeply", 3 + 7 * MAX_NESTING),
    ],
)
def test_parse_error(query: str, message: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    error = raised.value
    assert message in error.message
    assert error.position == column - 1
    assert str(error) == f"{error.message} at column {column}"


def test_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_NESTING
    assert parse_query("(" * depth + "a" + ")" * depth) == w("a")
    assert parse_query("b " + "NOT " * (depth - 1) + "a") is not None


@pytest.mark.parametrize(
    ("query", "caret"),
    [
        (
            "(Russia OR Kremlin AND election",
            "(Russia OR Kremlin AND election\n^\nunbalanced parenthesis at column 1",
        ),
        (
            "Russia OR Kremlin) AND election",
            "Russia OR Kremlin) AND election\n"
            "                 ^\n"
            "unbalanced parenthesis at column 18",
        ),
        (
            "russia AND titel:election",
            "russia AND titel:election\n"
            "           ^\n"
            'unknown field "titel" (did you mean "title"?) at column 12',
        ),
        (
            "russia NEAR",
            "russia NEAR\n       ^\nNEAR needs a term on both sides at column 8",
        ),
        ("", "\n^\nempty query at column 1"),
    ],
)
def test_caret_points_at_the_column(query: str, caret: str) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    assert raised.value.caret() == caret


def test_caret_counts_typographic_quotes_as_one_column() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query("“élection” ) x")
    assert raised.value.position == 11
    assert raised.value.caret().splitlines()[1] == " " * 11 + "^"


# --- printing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "printed"),
    [
        ("Election", "election"),
        ("“Central Bank”", '"central bank"'),
        ("U.S.", '"u s"'),
        ("elect*", "elect*"),
        ("a b", "a AND b"),
        ("a OR b c", "a OR b AND c"),
        ("(a OR b) c", "(a OR b) AND c"),
        ("a -b", "a AND NOT b"),
        ("a -(b OR c)", "a AND NOT (b OR c)"),
        ("a NEAR b", f"a NEAR/{DEFAULT_NEAR} b"),
        ("a ONEAR/2 b", "a ONEAR/2 b"),
        ("(a OR b) NEAR/2 c", "(a OR b) NEAR/2 c"),
        ("a NEAR/1 (b NEAR/2 c)", "a NEAR/1 (b NEAR/2 c)"),
        ("a NEAR/1 b NEAR/2 c", "a NEAR/1 b NEAR/2 c"),
        ("title:(a OR b)", "title:(a OR b)"),
        ("site:Example.com x", 'site:"example.com" AND x'),
        ("lang:en x", "lang:en AND x"),
    ],
)
def test_print(query: str, printed: str) -> None:
    tree = parse_query(query)
    assert str(tree) == printed
    assert parse_query(printed) == tree


def test_keywords_query_means_any_of_the_keywords() -> None:
    query = keywords_query(["election", "central bank", " troll farm* "])
    assert parse_query(query) == Or((w("election"), w("central", "bank"), w("troll", "farm*")))


# --- properties ------------------------------------------------------------------------------

# Pieces of queries, valid and not, so that random queries reach every rule of the grammar.
_PIECES = [
    "election",
    "Élection",
    "elect*",
    "el*",
    "*",
    "Москва",
    "U.S.",
    "e-mail",
    "Russia’s",
    '"',
    "“",
    "”",
    '"central bank"',
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "-",
    "-x",
    "NEAR",
    "NEAR/3",
    "NEAR/",
    "ONEAR/2",
    "title:",
    "text:",
    "author:",
    "site:",
    "feed:",
    "lang:",
    "titel:",
    "x:",
    "example.com",
    "and",
    "\u0301",
    "_",
]


def _parses_or_refuses(query: str) -> Node | None:
    try:
        return parse_query(query)
    except QuerySyntaxError as raised:
        error = raised
    assert 0 <= error.position <= len(query)
    assert error.caret().startswith(query + "\n")
    return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_the_syntax_error(query: str) -> None:
    tree = _parses_or_refuses(query)
    if tree is not None:
        assert parse_query(str(tree)) == tree


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=12),
    st.lists(st.sampled_from([" ", "", "  "]), min_size=12, max_size=12),
)
def test_any_query_like_text_parses_or_raises_the_syntax_error(
    pieces: list[str], separators: list[str]
) -> None:
    query = "".join(piece + sep for piece, sep in zip(pieces, separators, strict=False))
    tree = _parses_or_refuses(query)
    if tree is not None:
        assert requires_something(tree)
        assert parse_query(str(tree)) == tree


# Trees built directly, in the canonical form the parser produces: AND and OR flattened, with
# at least two clauses each; NEAR between positional clauses; no field inside a field.
_TOKENS = st.sampled_from(
    ["election", "russia", "kremlin", "and", "or", "near", "not", "2024", "москва", "εκλογεσ"]
)
_PREFIXES = st.sampled_from(["elect*", "russ*", "мос*"])


@st.composite
def _words(draw: st.DrawFn) -> Words:
    tokens = draw(st.lists(_TOKENS | _PREFIXES, min_size=1, max_size=3))
    return Words(tuple(tokens))


@st.composite
def _sources(draw: st.DrawFn) -> Source:
    name = draw(st.sampled_from(["site", "feed", "lang"]))
    value = draw(st.sampled_from(["example.com", "bbc", "bbc news", "en", "en-gb", "abc*"]))
    return Source(name, value)


def _positional(depth: int, in_field: bool) -> st.SearchStrategy[Node]:
    """Clauses that can stand beside NEAR: words, NEAR, OR of those, a field of those."""
    if depth <= 0:
        return _words()
    inner = _positional(depth - 1, in_field)
    options: list[st.SearchStrategy[Node]] = [
        _words(),
        st.builds(Near, inner, inner, st.integers(0, 20), st.booleans()),  # printed NEAR/n always
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: _flat(Or, cs)),
    ]
    if not in_field:
        options.append(
            st.builds(
                Field, st.sampled_from(["title", "text", "author"]), _positional(depth - 1, True)
            )
        )
    return st.one_of(options)


def _clauses(depth: int, in_field: bool = False) -> st.SearchStrategy[Node]:
    if depth <= 0:
        return _words() if in_field else _words() | _sources()
    inner = _clauses(depth - 1, in_field)
    options: list[st.SearchStrategy[Node]] = [
        _positional(depth - 1, in_field),
        inner.map(Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: _flat(And, cs)),
        st.lists(inner, min_size=2, max_size=3).map(lambda cs: _flat(Or, cs)),
    ]
    if not in_field:
        options.append(_sources())
        options.append(
            st.builds(
                Field, st.sampled_from(["title", "text", "author"]), _clauses(depth - 1, True)
            )
        )
    return st.one_of(options)


def _flat(kind: type[And] | type[Or], clauses: list[Node]) -> Node:
    flat: list[Node] = []
    for clause in clauses:
        flat.extend(clause.clauses if isinstance(clause, kind) else (clause,))
    return kind(tuple(flat))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_clauses(3))
def test_printing_a_tree_and_parsing_it_gives_the_same_tree(tree: Node) -> None:
    assume(requires_something(tree))
    printed = str(tree)
    assert parse_query(printed) == tree, printed


@settings(max_examples=200, deadline=None)
@given(_clauses(3))
def test_a_tree_without_required_words_is_refused(tree: Node) -> None:
    assume(not requires_something(tree))
    with pytest.raises(QuerySyntaxError, match="none of its words"):
        parse_query(str(tree))
