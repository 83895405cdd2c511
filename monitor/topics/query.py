"""The query language of topics and search: text -> a tree, or an error with its position.

Grammar (loosest binding first)::

    query    := or
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*              adjacent clauses are ANDed
    unary    := ("NOT" | "-") unary | near
    near     := primary (("NEAR" | "NEAR/n" | "ONEAR" | "ONEAR/n") primary)*
    primary  := "(" or ")" | FIELD ":" primary | "translit:" (word | '"' words '"')
              | '"' words '"' | word

Operators are upper-case; ``and``, ``or``, ``near`` in lower case are ordinary words. A ``-`` is
NOT only when it opens a clause (``-bomb``); standing alone (``iraq - bomb``) it is an error.
NEAR needs two separate occurrences: a word is never near itself. A word may end in ``*``
(``elect*``), or start with ``~`` for any form of it (``~выборы``, also inside a phrase:
``"~президентские ~выборы"``); ``translit:Шойгу`` is the word in Cyrillic and in its Latin
transliterations. Both are expanded before matching (monitor.topics.forms). Fields:
``title:``, ``text:``, ``author:`` scope words to a part of the article; ``site:``, ``feed:``,
``lang:`` test where it comes from. Matching ignores case, diacritics and punctuation: a query
word is split into the same Unicode words as article text, so ``U.S.`` is the phrase ``"u s"``
and ``Russia's`` is ``"russia s"``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from monitor.errors import MonitorError
from monitor.text import fold, split_words

DEFAULT_NEAR = 10
MAX_NEAR = 1000
# Parentheses, NOTs and NEARs nested deeper than this are refused: the parser and everything
# that walks the tree recurse, and no real query comes near it.
MAX_NESTING = 50
SCOPE_FIELDS = ("title", "text", "author")
SOURCE_FIELDS = ("site", "feed", "lang")
# Not a field but a modifier written like one: the word or phrase after it, transliterated.
TRANSLIT_FIELD = "translit"
FIELDS = SCOPE_FIELDS + SOURCE_FIELDS
# Marks on a token for monitor.topics.forms to expand before matching: "~" any form of the
# word, "@" the word and its transliterations. Neither is a word character, so no text token
# ever carries one.
FORMS = "~"
TRANSLIT = "@"
# Marked words in one phrase, at most: a phrase expands to every combination of their variants.
MAX_MARKED = 3
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_HYPHENATED = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
OPERATORS = ("AND", "OR", "NOT")
# Typographic double quotes (as word processors and phones type them) quote phrases too.
_QUOTES = str.maketrans(dict.fromkeys("\u201c\u201d\u201e\u00ab\u00bb\uff02", '"'))
_NEAR = re.compile(r"^(O?NEAR)(?:/(\d*))?$")
_FIELD = re.compile(r"([A-Za-z]+):")  # used with match(text, pos): anchored there
_WORD_CHARS = re.compile(r'[^\s()"]+')
# Minus signs and dashes standing alone (hyphen-minus, en and em dash, the minus sign).
_DASHES = re.compile("[-\u2013\u2014\u2212]+")
_NEXT_CLAUSE = re.compile(r'\s*("[^"]*"|[^\s()"]+)')


class QuerySyntaxError(MonitorError):
    """A query that cannot be used, with the column where the trouble is."""

    def __init__(self, message: str, query: str, position: int) -> None:
        self.message = message
        self.query = query
        self.position = max(0, min(position, len(query)))
        super().__init__(f"{message} at column {self.position + 1}")

    def caret(self) -> str:
        """The query with a caret under the column at fault, and the message."""
        return f"{self.query}\n{' ' * self.position}^\n{self}"


# --- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Words:
    """A word or a phrase: folded tokens in order; a token ending in ``*`` is a prefix."""

    tokens: tuple[str, ...]

    def __str__(self) -> str:
        if self.tokens and all(token.startswith(TRANSLIT) for token in self.tokens):
            return f"{TRANSLIT_FIELD}:" + str(Words(tuple(t[1:] for t in self.tokens)))
        if len(self.tokens) == 1 and not _needs_quotes(self.tokens[0]):
            return self.tokens[0]
        return '"' + " ".join(self.tokens) + '"'


@dataclass(frozen=True, slots=True)
class And:
    """Every clause matches."""

    clauses: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_wrap(clause, (Or,)) for clause in self.clauses)


@dataclass(frozen=True, slots=True)
class Or:
    """At least one clause matches."""

    clauses: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(str(clause) for clause in self.clauses)


@dataclass(frozen=True, slots=True)
class Not:
    """The clause does not match."""

    clause: Node

    def __str__(self) -> str:
        return "NOT " + _wrap(self.clause, (And, Or))


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides occur within ``distance`` words of each other (left first when ``ordered``)."""

    left: Node
    right: Node
    distance: int = DEFAULT_NEAR
    ordered: bool = False

    def __str__(self) -> str:
        operator = ("ONEAR" if self.ordered else "NEAR") + f"/{self.distance}"
        # NEAR chains to the left: a NEAR on the right needs its parentheses.
        left = _wrap(self.left, (And, Or, Not))
        right = _wrap(self.right, (And, Or, Not, Near))
        return f"{left} {operator} {right}"


@dataclass(frozen=True, slots=True)
class Field:
    """Words scoped to one part of the article: ``title``, ``text`` or ``author``."""

    name: str
    clause: Node

    def __str__(self) -> str:
        return f"{self.name}:" + _wrap(self.clause, (And, Or, Not, Near))


@dataclass(frozen=True, slots=True)
class Source:
    """Where an article comes from: ``site`` (URL host), ``feed`` (title or host), ``lang``."""

    name: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}:" + (f'"{self.value}"' if _needs_quotes(self.value) else self.value)


Node = Words | And | Or | Not | Near | Field | Source


def _wrap(node: Node, kinds: tuple[type, ...]) -> str:
    return f"({node})" if isinstance(node, kinds) else str(node)


def _needs_quotes(token: str) -> bool:
    # Tokens are folded to lower case, so they never read as (upper-case) operators.
    bare = token[:-1] if token.endswith("*") else token
    bare = bare.removeprefix(FORMS)
    return split_words(bare) != [bare]


# --- lexing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "phrase", "word", "op", "near", "field", "minus", "end"
    text: str
    position: int
    distance: int = DEFAULT_NEAR


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    text = query.translate(_QUOTES)
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char in "()":
            tokens.append(_Token(char, char, position))
            position += 1
        elif char == '"':
            end = text.find('"', position + 1)
            if end == -1:
                raise QuerySyntaxError("unclosed quotation mark", query, position)
            tokens.append(_Token("phrase", text[position + 1 : end], position))
            position = end + 1
        elif char == "-" and _starts_clause(text, position):
            tokens.append(_Token("minus", "-", position))
            position += 1
        else:
            position = _lex_word(query, text, position, tokens)
    tokens.append(_Token("end", "", len(query)))
    return tokens


def _starts_clause(text: str, position: int) -> bool:
    """A ``-`` is NOT when it opens a clause: at the start, after a space or ``(``."""
    follows = text[position + 1 : position + 2]
    if not follows or follows.isspace():
        return False
    return position == 0 or text[position - 1].isspace() or text[position - 1] == "("


def _lex_word(query: str, text: str, position: int, tokens: list[_Token]) -> int:
    field = _FIELD.match(text, position)
    if field:
        name = field.group(1).lower()
        if name not in FIELDS and name != TRANSLIT_FIELD:
            raise QuerySyntaxError(_unknown_field(field.group(1)), query, position)
        tokens.append(_Token("field", name, position))
        return field.end()
    match = _WORD_CHARS.match(text, position)
    assert match is not None, "the caller saw a word character here"
    word = match.group()
    near = _NEAR.match(word)
    if near:
        tokens.append(_near_token(query, near, position))
    elif word.startswith(("NEAR/", "ONEAR/")):
        operator = word.split("/", 1)[0]
        raise QuerySyntaxError(f"{operator}/ needs a number of words, as NEAR/5", query, position)
    elif word in OPERATORS:
        tokens.append(_Token("op", word, position))
    elif "*" in word or split_words(fold(word)) or (tokens and tokens[-1].kind == "field"):
        tokens.append(_Token("word", word, position))
    elif _DASHES.fullmatch(word):
        # "iraq - bomb" reads as "iraq but not bomb" to some and "iraq, bomb" to others:
        # silently taking it as AND excluded nothing, so a lone minus is refused.
        following = _NEXT_CLAUSE.match(text, match.end())
        after = following.group(1) if following else "word"
        raise QuerySyntaxError(
            f"a lone {word} excludes nothing: write -{after} (no space) or NOT {after} to "
            f"exclude it, or leave the {word} out",
            query,
            position,
        )
    # Anything else is punctuation standing alone ("a & b", "a / b"): like the punctuation
    # inside article text, it separates words and means nothing.
    return match.end()


def _near_token(query: str, near: re.Match[str], position: int) -> _Token:
    digits = near.group(2)
    if digits == "":
        raise QuerySyntaxError(
            f"{near.group(1)}/ needs a number of words, as NEAR/5", query, position
        )
    try:
        distance = DEFAULT_NEAR if digits is None else int(digits)
    except ValueError:  # more digits than int() converts: too far in any case
        distance = MAX_NEAR + 1
    if distance > MAX_NEAR:
        raise QuerySyntaxError(f"{near.group(1)} distance is at most {MAX_NEAR}", query, position)
    return _Token("near", near.group(1), position, distance)


def _unknown_field(name: str) -> str:
    known = (*FIELDS, TRANSLIT_FIELD)
    guess = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    hint = f' (did you mean "{guess[0]}"?)' if guess else f" (fields: {', '.join(FIELDS)})"
    return f'unknown field "{name}"{hint}'


# --- parsing -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def fail(self, message: str, token: _Token | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, (token or self.token).position)

    def enter(self, token: _Token) -> None:
        """One level deeper (a parenthesis, NOT or NEAR); refuse a query nested too deep."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"the query nests too deeply (at most {MAX_NESTING} levels)", token)

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise QuerySyntaxError("empty query", self.query, 0)
        node = self.parse_or()
        if self.token.kind == ")":
            raise self.fail("unbalanced parenthesis")
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.token.text!r}")
        return node

    def parse_or(self) -> Node:
        clauses = [self.parse_and()]
        while self.token.kind == "op" and self.token.text == "OR":
            operator = self.advance()
            if self._at_clause_end():
                raise self.fail("OR needs a clause on both sides", operator)
            clauses.append(self.parse_and())
        return _combine(Or, clauses)

    def parse_and(self) -> Node:
        clauses = [self.parse_unary()]
        while True:
            if self.token.kind == "op" and self.token.text == "AND":
                operator = self.advance()
                if self._at_clause_end():
                    raise self.fail("AND needs a clause on both sides", operator)
            elif not self._starts_unary():
                break
            clauses.append(self.parse_unary())
        return _combine(And, clauses)

    def parse_unary(self) -> Node:
        if (self.token.kind == "op" and self.token.text == "NOT") or self.token.kind == "minus":
            operator = self.advance()
            if self._at_clause_end():
                raise self.fail(f"{operator.text} needs a clause after it", operator)
            self.enter(operator)
            node = Not(self.parse_unary())
            self.depth -= 1
            return node
        return self.parse_near()

    def parse_near(self) -> Node:
        if self.token.kind == "near":
            raise self.fail("NEAR needs a term on both sides")
        left = self.parse_primary()
        depth = self.depth
        while self.token.kind == "near":
            operator = self.advance()
            self.enter(operator)  # NEAR chains to the left: each one nests the tree deeper
            if not self._starts_primary():
                raise self.fail(f"{operator.text} needs a term on both sides", operator)
            right = self.parse_primary()
            for side in (left, right):
                if not positional(side):
                    raise self.fail(
                        f"{operator.text} needs terms, phrases or OR groups on both sides", operator
                    )
            left = Near(left, right, operator.distance, ordered=operator.text == "ONEAR")
        self.depth = depth
        return left

    def parse_primary(self) -> Node:
        token = self.token
        if token.kind == "(":
            self.advance()
            if self.token.kind == ")":
                raise self.fail("empty parentheses")
            self.enter(token)
            node = self.parse_or()
            if self.token.kind != ")":
                raise self.fail("unbalanced parenthesis", token)
            self.advance()
            self.depth -= 1
            return node
        if token.kind == "field":
            return self.parse_field()
        if token.kind in ("word", "phrase"):
            self.advance()
            return self.words(token)
        if token.kind == ")":
            raise self.fail("unbalanced parenthesis")
        if token.kind == "end":
            raise self.fail("the query ends too early")
        raise self.fail(f"{token.text} needs a term on both sides")

    def parse_field(self) -> Node:
        field = self.advance()
        if field.text == TRANSLIT_FIELD:
            return self.parse_translit(field)
        if field.text in SOURCE_FIELDS:
            value = self.token
            # A value of only combining marks folds to nothing, and "" would match any article.
            if value.kind not in ("word", "phrase") or not _source_value(value.text):
                raise self.fail(f"{field.text}: needs a value, as {field.text}:example", field)
            self.advance()
            return Source(field.text, _source_value(value.text))
        nested = self.token.kind == "field" and self.token.text != TRANSLIT_FIELD
        if not self._starts_primary() or nested:
            raise self.fail(f"{field.text}: needs words after it, as {field.text}:election", field)
        clause = self.parse_primary()
        if _has_field(clause):
            raise self.fail(f"a field inside {field.text}: cannot be used", field)
        return Field(field.text, clause)

    def parse_translit(self, field: _Token) -> Words:
        """``translit:`` and the word or phrase after it, each word marked."""
        value = self.token
        if value.kind not in ("word", "phrase"):
            raise self.fail("translit: needs a word or a phrase after it, as translit:Шойгу", field)
        self.advance()
        words = self.words(value)
        for token in words.tokens:
            if token.startswith(FORMS) or token.endswith("*"):
                raise self.fail("translit: takes plain words, without ~ or *", value)
            if not _CYRILLIC.search(token):
                raise self.fail(
                    "translit: needs a word in Cyrillic, as translit:Шойгу "
                    "(Latin spellings go in the topic's names list)",
                    value,
                )
        self._check_marked(len(words.tokens), value)
        return Words(tuple(TRANSLIT + token for token in words.tokens))

    def _check_marked(self, marked: int, token: _Token) -> None:
        if marked > MAX_MARKED:
            raise self.fail(
                f"at most {MAX_MARKED} words of a phrase may take ~ or translit:", token
            )

    def words(self, token: _Token) -> Words:
        tokens: list[str] = []
        for raw in token.text.split():
            tokens.extend(self._raw_tokens(raw, token))
        if not tokens:
            what = "quotation marks" if token.kind == "phrase" else repr(token.text)
            raise self.fail(f"{what} hold no letters or digits", token)
        self._check_marked(sum(t.startswith(FORMS) for t in tokens), token)
        return Words(tuple(tokens))

    def _raw_tokens(self, raw: str, token: _Token) -> list[str]:
        if raw.startswith(FORMS):
            return [self._forms_token(raw, token)]
        stem = raw.rstrip("*")
        if "*" in stem or raw.endswith("**"):
            raise self.fail("a wildcard * may only end a word, as elect*", token)
        pieces = split_words(fold(stem))
        if raw.endswith("*"):
            if not pieces or len(pieces[-1]) < 3:
                raise self.fail("a wildcard needs at least 3 letters before the *", token)
            pieces[-1] += "*"
        return pieces

    def _forms_token(self, raw: str, token: _Token) -> str:
        """``~word``: one word, without a wildcard."""
        if raw.endswith("*"):
            raise self.fail("~ and * cannot be combined: ~ already matches every form", token)
        word = fold(raw[len(FORMS) :])
        if _HYPHENATED.fullmatch(word):  # one word to a dictionary: интернет-исследование
            return FORMS + word
        pieces = split_words(word)
        if len(pieces) != 1:
            raise self.fail("~ needs one word right after it, as ~выборы", token)
        return FORMS + pieces[0]

    def _starts_primary(self) -> bool:
        return self.token.kind in ("(", "word", "phrase", "field")

    def _starts_unary(self) -> bool:
        return (
            self._starts_primary()
            or self.token.kind == "minus"
            or (self.token.kind == "op" and self.token.text == "NOT")
        )

    def _at_clause_end(self) -> bool:
        return self.token.kind in ("end", ")") or (
            self.token.kind == "op" and self.token.text in ("AND", "OR")
        )


def _combine(kind: type[And] | type[Or], clauses: list[Node]) -> Node:
    if len(clauses) == 1:
        return clauses[0]
    flat: list[Node] = []
    for clause in clauses:
        flat.extend(clause.clauses if isinstance(clause, kind) else (clause,))
    return kind(tuple(flat))


def _source_value(text: str) -> str:
    return " ".join(fold(text).split())


def positional(node: Node) -> bool:
    """Whether ``node`` matches at places in the text (so it can stand beside NEAR)."""
    if isinstance(node, Words | Near):
        return True
    if isinstance(node, Or):
        return all(positional(clause) for clause in node.clauses)
    if isinstance(node, Field):
        return positional(node.clause)
    return False


def _has_field(node: Node) -> bool:
    if isinstance(node, Field | Source):
        return True
    if isinstance(node, And | Or):
        return any(_has_field(clause) for clause in node.clauses)
    if isinstance(node, Not):
        return _has_field(node.clause)
    if isinstance(node, Near):
        return _has_field(node.left) or _has_field(node.right)
    return False


def requires_something(node: Node, *, sources: bool = True) -> bool:
    """Whether every match needs a word of the query, or (``sources``) a source test such as
    ``site:``; a query of NOT clauses alone needs neither."""
    if isinstance(node, Words | Near):
        return True
    if isinstance(node, Source):
        return sources
    if isinstance(node, Field):
        return requires_something(node.clause, sources=sources)
    if isinstance(node, And):
        return any(requires_something(clause, sources=sources) for clause in node.clauses)
    if isinstance(node, Or):
        return all(requires_something(clause, sources=sources) for clause in node.clauses)
    return False


def parse_query(query: str) -> Node:
    """Parse ``query``; raise QuerySyntaxError with the column of the first problem."""
    node = _Parser(query).parse()
    if FORMS in query or f"{TRANSLIT_FIELD}:" in query.lower():
        # Only queries that may hold marked words pay for loading the dictionaries.
        from monitor.topics.forms import check_expansion

        check_expansion(node, query)
    if not requires_something(node):
        raise QuerySyntaxError(
            "the query would match articles with none of its words; add a word that must occur",
            query,
            0,
        )
    return node


def keywords_query(keywords: list[str]) -> str:
    """The query equivalent to a list of keywords and phrases: any of them."""
    return " OR ".join(
        f'"{keyword}"' if " " in keyword.strip() else keyword for keyword in keywords
    )
