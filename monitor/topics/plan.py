"""Query planning: a parsed query -> an index query whose matches include all of the query's.

Where it sits (DESIGN.md): archive queries (search, preview, backtest, retag) ask the index
(``monitor.topics.index``) for candidates with this plan, and the exact matcher verifies each
one, so the results are the scan's. The plan only has to return a superset:

- words, phrases and prefixes are index terms, ``title:`` / ``text:`` / ``author:`` columns
  (an unscoped word looks in title and text, as the matcher does);
- AND and OR stay; NEAR becomes the AND of its two sides;
- NOT and the source tests (``site:``, ``feed:``, ``lang:``) constrain nothing here (a
  clause that holds for every article): the matcher applies them afterwards;
- ``~word``, ``translit:`` (and the names and queries expanded into them) become the OR of
  the words they stand for (``monitor.topics.forms.expand_query``).

A query with no positive term the index can look up (``site:example.com``) has no plan, and
is scanned. A plan is ``exact`` when the index answers the query itself (ANDs and ORs of
single ASCII words and prefixes): its candidates are the matches, and counting them needs no
article read.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.topics.forms import expand_query
from monitor.topics.index import FIELD_PREFIX, MAX_WORD
from monitor.topics.query import And, Field, Near, Node, Or, Words

UNSCOPED = ("title", "text")


@dataclass(frozen=True, slots=True)
class Term:
    """Words in a row (one word, or a phrase) looked for in ``fields``; a word ending in
    ``*`` is a prefix."""

    words: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part holds."""

    parts: tuple[IndexNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part holds."""

    parts: tuple[IndexNode, ...]


IndexNode = Term | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Plan:
    """An index query for a parsed query, and whether its matches are exactly the query's."""

    root: IndexNode
    exact: bool

    def fts5(self) -> str:
        """The plan as an FTS5 MATCH expression."""
        return _fts5(self.root)

    def tsquery(self) -> str:
        """The plan as PostgreSQL ``tsquery`` input (lexemes as ``monitor.topics.index``)."""
        return _tsquery(self.root)


def plan_query(node: Node) -> Plan | None:
    """The index query for ``node``, or None when the index cannot narrow it (scan)."""
    expanded = expand_query(node)
    root = _translate(expanded, UNSCOPED)
    if root is None:
        return None
    return Plan(root, _exact(expanded))


def _translate(node: Node, fields: tuple[str, ...]) -> IndexNode | None:
    """The index query of ``node``; None for "any article" (the matcher decides)."""
    if isinstance(node, Words):
        words = tuple(_index_word(word) for word in node.tokens)
        return Term(words, fields) if words else None
    if isinstance(node, Field):
        if node.name not in FIELD_PREFIX:
            return None
        return _translate(node.clause, (node.name,))
    if isinstance(node, And):
        parts = [part for c in node.clauses if (part := _translate(c, fields)) is not None]
        return _all(parts)
    if isinstance(node, Near):
        sides = (node.left, node.right)
        parts = [part for c in sides if (part := _translate(c, fields)) is not None]
        return _all(parts)
    if isinstance(node, Or):
        any_parts: list[IndexNode] = []
        for clause in node.clauses:
            part = _translate(clause, fields)
            if part is None:
                return None  # one way to match needs no indexed word: so does the OR
            any_parts.extend(part.parts if isinstance(part, AnyOf) else (part,))
        return AnyOf(tuple(any_parts)) if len(any_parts) > 1 else any_parts[0]
    # Not, Source: applied by the matcher afterwards.
    return None


def _all(parts: list[IndexNode]) -> IndexNode | None:
    if not parts:
        return None
    flat: list[IndexNode] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, AllOf) else (part,))
    return AllOf(tuple(flat)) if len(flat) > 1 else flat[0]


def _index_word(word: str) -> str:
    """How the index holds ``word``: words past MAX_WORD characters are kept cut to it, so a
    longer word (or prefix) is looked for as a prefix of that length."""
    bare = word.removesuffix("*")
    if len(bare) > MAX_WORD or (len(bare) == MAX_WORD and word.endswith("*")):
        return bare[:MAX_WORD] + "*"
    return word


def _exact(node: Node) -> bool:
    """Whether the index alone answers ``node``: ANDs and ORs (field-scoped or not) of single
    words or prefixes of ASCII letters and digits, short enough to be indexed whole."""
    if isinstance(node, Words):
        if len(node.tokens) != 1:
            return False
        bare = node.tokens[0].removesuffix("*")
        return bare.isascii() and bare.isalnum() and len(bare) < MAX_WORD
    if isinstance(node, Field):
        return node.name in FIELD_PREFIX and _exact(node.clause)
    if isinstance(node, And | Or):
        return all(_exact(clause) for clause in node.clauses)
    return False  # Not, Near, Source: only the matcher can tell


# --- rendering ------------------------------------------------------------------------------


def _fts5(node: IndexNode) -> str:
    if isinstance(node, AllOf):
        return "(" + " AND ".join(_fts5(part) for part in node.parts) + ")"
    if isinstance(node, AnyOf):
        return "(" + " OR ".join(_fts5(part) for part in node.parts) + ")"
    columns = "{" + " ".join(node.fields) + "}"
    # FTS5 takes a prefix only at the end of a phrase: a phrase with one inside becomes the
    # AND of its words (a superset).
    if any(word.endswith("*") for word in node.words[:-1]):
        return "(" + " AND ".join(f"{columns} : {_fts5_phrase((w,))}" for w in node.words) + ")"
    return f"({columns} : {_fts5_phrase(node.words)})"


def _fts5_phrase(words: tuple[str, ...]) -> str:
    prefix = words[-1].endswith("*")
    body = " ".join(word.removesuffix("*") for word in words).replace('"', '""')
    return f'"{body}"' + ("*" if prefix else "")


def _tsquery(node: IndexNode) -> str:
    if isinstance(node, AllOf):
        return "(" + " & ".join(_tsquery(part) for part in node.parts) + ")"
    if isinstance(node, AnyOf):
        return "(" + " | ".join(_tsquery(part) for part in node.parts) + ")"
    # Lexemes have no positions (see monitor.topics.index): a phrase is the AND of its words.
    return "(" + " & ".join(_ts_word(word, node.fields) for word in node.words) + ")"


def _ts_word(word: str, fields: tuple[str, ...]) -> str:
    bare = word.removesuffix("*").replace("\\", "\\\\").replace("'", "''")
    suffix = ":*" if word.endswith("*") else ""
    return "(" + " | ".join(f"'{FIELD_PREFIX[f]}{bare}'{suffix}" for f in fields) + ")"
