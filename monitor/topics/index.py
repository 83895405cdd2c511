"""The search index: the matcher's own folded words of every article, kept beside the archive.

Where it sits (DESIGN.md): written with the article, in the same transaction (ingest, page
bodies, edits, prune); read by archive queries (``monitor.topics.plan`` turns a query into an
index query whose candidates the exact matcher then verifies).

The words indexed are exactly the tokens the matcher compares (``monitor.topics.matcher``:
``fold``, then runs of letters and digits) of the three fields it reads: the title, the text
(``monitor.text.article_text``: body, then the feed's text the body does not say) and the
author. The databases' own tokenizers never decide what a word is, so the index cannot miss a
word the matcher would find:

- SQLite: a contentless FTS5 table ``article_fts`` (title, text, author) over the words joined
  by spaces. Its tokenizer splits on spaces only (every other character class is a token
  character) and lower-cases what is already folded. Deleting a row of a contentless table
  needs the words it was given, so ``article_words`` keeps them (zlib-compressed), by article;
  ``monitor index check`` compares them with what the article says now.
- PostgreSQL: a ``tsvector`` column ``article.search_vector`` with a GIN index, built from the
  words as lexemes without positions (a position past 16,383 would be clipped and break phrase
  queries), each prefixed by its field: ``t`` title, ``x`` text, ``a`` author.

Words longer than MAX_WORD characters are indexed by their first MAX_WORD (PostgreSQL refuses
lexemes over 2 KB); the planner looks for a longer query word as a prefix of that length.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, MetaData, bindparam, event, func, select, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapper
from sqlmodel import SQLModel

from monitor.models import Article
from monitor.text import article_text
from monitor.topics.matcher import words_of

log = logging.getLogger(__name__)
ARTICLES = SQLModel.metadata.tables["article"]
FTS_TABLE = "article_fts"
WORDS_TABLE = "article_words"
VECTOR_COLUMN = "search_vector"
VECTOR_INDEX = "ix_article_search_vector"
# Longer words are indexed (and looked for) by their first MAX_WORD characters.
MAX_WORD = 60
# Field prefixes of PostgreSQL lexemes: one GIN index serves the three fields.
FIELD_PREFIX = {"title": "t", "text": "x", "author": "a"}
# Every Unicode category but separators (Z*) and control characters is a token character: the
# words are already the matcher's, and only the spaces between them separate them. (Naming
# them all also keeps letters newer than SQLite's Unicode tables, category Cn there, in words.)
FTS_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* Co Cn Cs Cf'"
FTS_CREATE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(title, text, author, content='', "
    f'detail=full, tokenize="{FTS_TOKENIZER}")'
)
WORDS_CREATE = f"CREATE TABLE {WORDS_TABLE} (article_id INTEGER PRIMARY KEY, words BLOB NOT NULL)"
# Tables and columns that belong to the index, not to the models (see ``outside_models``).
INDEX_TABLES = frozenset({WORDS_TABLE, FTS_TABLE} | {f"{FTS_TABLE}_{s}" for s in
                          ("data", "idx", "content", "docsize", "config")})  # fmt: skip
# Articles read and indexed per statement batch.
BATCH = 500
_SEPARATOR = "\x1f"  # between the fields of a stored word list (never inside a word)
# article + its index column: how ingest inserts on PostgreSQL, vector and row in one statement.
_PG_METADATA = MetaData()
PG_ARTICLES = ARTICLES.to_metadata(_PG_METADATA)
PG_ARTICLES.append_column(Column(VECTOR_COLUMN, TSVECTOR))


@dataclass(frozen=True, slots=True)
class IndexWords:
    """The indexed words of one article's three fields, each joined by single spaces."""

    title: str
    text: str
    author: str

    def pack(self) -> bytes:
        """The words as ``article_words`` keeps them."""
        return zlib.compress(_SEPARATOR.join((self.title, self.text, self.author)).encode(), 1)

    @classmethod
    def unpack(cls, packed: bytes) -> IndexWords:
        """Words kept by ``pack``."""
        title, body, author = zlib.decompress(packed).decode().split(_SEPARATOR)
        return cls(title, body, author)

    def lexemes(self) -> set[str]:
        """The PostgreSQL lexemes: each distinct word with its field's prefix."""
        return {
            FIELD_PREFIX[name] + word
            for name, words in (("title", self.title), ("text", self.text), ("author", self.author))
            for word in words.split()
        }

    def vector(self) -> str:
        """The words as ``tsvector`` input: quoted lexemes (words hold no quote or backslash)."""
        return " ".join(f"'{lexeme}'" for lexeme in sorted(self.lexemes()))


def _field_words(text: str) -> str:
    return " ".join(word[:MAX_WORD] for word in words_of(text))


def index_words(
    *, title: str, summary: str, content: str, body: str = "", author: str = ""
) -> IndexWords:
    """What the index holds for an article: the words the matcher reads in each field."""
    return IndexWords(
        _field_words(title or ""),
        _field_words(article_text(summary or "", content or "", body or "")),
        _field_words(author or ""),
    )


def article_words(article: Article) -> IndexWords:
    """``index_words`` of a stored article."""
    return index_words(
        title=article.title, summary=article.summary, content=article.content,
        body=article.body, author=article.author,
    )  # fmt: skip


def is_postgres(connection: Connection) -> bool:
    """Whether the index on this connection is PostgreSQL's (else SQLite's FTS5)."""
    return connection.dialect.name == "postgresql"


# --- writing --------------------------------------------------------------------------------


def write_index(connection: Connection, entries: Sequence[tuple[int, IndexWords]]) -> None:
    """Index (or index again) these articles: (article id, its words)."""
    if not entries:
        return
    if is_postgres(connection):
        connection.execute(
            text(f"UPDATE article SET {VECTOR_COLUMN} = CAST(:vector AS tsvector) WHERE id = :id"),
            [{"id": article_id, "vector": words.vector()} for article_id, words in entries],
        )
        return
    ids = [article_id for article_id, _ in entries]
    _forget(connection, ids)
    connection.execute(
        text(f"INSERT INTO {FTS_TABLE} (rowid, title, text, author) "
             "VALUES (:id, :title, :text, :author)"),
        [{"id": i, "title": w.title, "text": w.text, "author": w.author} for i, w in entries],
    )  # fmt: skip
    connection.execute(
        text(f"INSERT INTO {WORDS_TABLE} (article_id, words) VALUES (:id, :words)"),
        [{"id": article_id, "words": words.pack()} for article_id, words in entries],
    )


def _forget(connection: Connection, ids: Sequence[int]) -> None:
    """Remove these articles from the SQLite index, with the words each was given."""
    for chunk in _chunks(list(ids), BATCH):
        stored = connection.execute(
            text(f"SELECT article_id, words FROM {WORDS_TABLE} WHERE article_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)),
            {"ids": chunk},
        ).all()  # fmt: skip
        if not stored:
            continue
        rows = []
        for article_id, packed in stored:
            words = IndexWords.unpack(packed)
            rows.append({"id": article_id, "title": words.title, "text": words.text,
                         "author": words.author})  # fmt: skip
        connection.execute(
            text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, text, author) "
                 "VALUES ('delete', :id, :title, :text, :author)"),
            rows,
        )  # fmt: skip
        connection.execute(
            text(f"DELETE FROM {WORDS_TABLE} WHERE article_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)),
            {"ids": [row["id"] for row in rows]},
        )  # fmt: skip


def remove_from_index(connection: Connection, ids: Sequence[int]) -> None:
    """Take articles about to be deleted out of the index (PostgreSQL's goes with the row)."""
    if ids and not is_postgres(connection):
        _forget(connection, ids)


def _text_rows(connection: Connection, ids: Sequence[int]) -> Iterator[tuple[int, IndexWords]]:
    a = ARTICLES.c
    for chunk in _chunks(list(ids), BATCH):
        rows = connection.execute(
            select(a.id, a.title, a.summary, a.content, a.body, a.author).where(a.id.in_(chunk))
        ).all()
        for id_, title, summary, content, body, author in rows:
            yield (
                id_,
                index_words(
                    title=title, summary=summary, content=content, body=body, author=author
                ),
            )


def reindex_articles(connection: Connection, ids: Sequence[int]) -> None:
    """Index these stored articles again from what they say now (after an edit, a body)."""
    write_index(connection, list(_text_rows(connection, ids)))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- ORM writes keep the index too ------------------------------------------------------------

_TEXT_FIELDS = ("title", "summary", "content", "body", "author")


def _after_insert(_mapper: Mapper[Any], connection: Connection, article: Article) -> None:
    write_index(connection, [(article.id or 0, article_words(article))])


def _after_update(_mapper: Mapper[Any], connection: Connection, article: Article) -> None:
    from sqlalchemy import inspect

    state = inspect(article)
    if any(state.attrs[name].history.has_changes() for name in _TEXT_FIELDS):
        write_index(connection, [(article.id or 0, article_words(article))])


def _before_delete(_mapper: Mapper[Any], connection: Connection, article: Article) -> None:
    remove_from_index(connection, [article.id or 0])


event.listen(Article, "after_insert", _after_insert)
event.listen(Article, "after_update", _after_update)
event.listen(Article, "before_delete", _before_delete)


# --- checking and rebuilding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexCheck:
    """How far the index has drifted from the articles."""

    articles: int
    missing: int  # articles with no index entry
    stale: int  # entries whose words are not what the article says now
    orphans: int  # entries of articles that no longer exist
    broken: str = ""  # what FTS5's own integrity check said, when it failed

    @property
    def drift(self) -> int:
        """Entries that are wrong, missing or left over (a broken FTS5 table counts one)."""
        return self.missing + self.stale + self.orphans + (1 if self.broken else 0)


def _stored_entries(connection: Connection, ids: list[int]) -> dict[int, IndexWords | set[str]]:
    """What the index holds for these articles: SQLite's kept words, PostgreSQL's lexemes."""
    if is_postgres(connection):
        rows = connection.execute(
            text(f"SELECT id, tsvector_to_array({VECTOR_COLUMN}) FROM article "
                 f"WHERE id IN :ids AND {VECTOR_COLUMN} IS NOT NULL")
            .bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        ).all()  # fmt: skip
        return {id_: set(lexemes) for id_, lexemes in rows}
    rows = connection.execute(
        text(f"SELECT article_id, words FROM {WORDS_TABLE} WHERE article_id IN :ids")
        .bindparams(bindparam("ids", expanding=True)),
        {"ids": ids},
    ).all()  # fmt: skip
    return {id_: IndexWords.unpack(packed) for id_, packed in rows}


def _id_batches(connection: Connection) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = list(
            connection.execute(
                select(ARTICLES.c.id).where(ARTICLES.c.id > last).order_by(ARTICLES.c.id)
                .limit(BATCH)
            ).scalars()
        )  # fmt: skip
        if not ids:
            return
        yield ids
        last = ids[-1]


def check_index(
    connection: Connection, *, progress: Callable[[int, int], None] | None = None
) -> IndexCheck:
    """Compare the index with every article's words now; count what is missing or wrong."""
    total = connection.execute(select(func.count()).select_from(ARTICLES)).scalar_one()
    missing = stale = done = 0
    for ids in _id_batches(connection):
        stored = _stored_entries(connection, ids)
        for article_id, words in _text_rows(connection, ids):
            entry = stored.get(article_id)
            if entry is None:
                missing += 1
            elif entry != (words.lexemes() if isinstance(entry, set) else words):
                stale += 1
        done += len(ids)
        if progress is not None:
            progress(done, total)
    orphans, broken = _orphans_and_integrity(connection)
    return IndexCheck(total, missing, stale, orphans, broken)


def _orphans_and_integrity(connection: Connection) -> tuple[int, str]:
    if is_postgres(connection):
        return 0, ""  # the vector is a column of the article: it cannot outlive it
    orphans = connection.execute(
        text(f"SELECT count(*) FROM {WORDS_TABLE} WHERE article_id NOT IN (SELECT id FROM article)")
    ).scalar_one()
    # Rows of the FTS5 table that have no kept words (written around article_words).
    unkept = connection.execute(
        text(f"SELECT count(*) FROM {FTS_TABLE}_docsize WHERE id NOT IN "
             f"(SELECT article_id FROM {WORDS_TABLE})")
    ).scalar_one()  # fmt: skip
    broken = ""
    try:
        with connection.begin_nested():
            connection.execute(
                text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 0)")
            )
    except Exception as exc:
        broken = str(getattr(exc, "orig", exc)).splitlines()[0]
    return int(orphans) + int(unkept), broken


def rebuild_index(
    connection: Connection,
    *,
    progress: Callable[[int, int], None] | None = None,
    commit: Callable[[], None] | None = None,
) -> int:
    """Index every article again from its text, a batch at a time; return how many.

    Each batch replaces its articles' entries, so a rebuild stopped anywhere (``commit`` ends
    a transaction after each batch) leaves an index that is right for every article it reached
    and as it was for the others. Entries of articles that are gone are removed at the end.
    """
    total = connection.execute(select(func.count()).select_from(ARTICLES)).scalar_one()
    done = 0
    for ids in _id_batches(connection):
        write_index(connection, list(_text_rows(connection, ids)))
        done += len(ids)
        if commit is not None:
            commit()
        if progress is not None:
            progress(done, total)
    if not is_postgres(connection):
        orphans = connection.execute(
            text(f"SELECT article_id FROM {WORDS_TABLE} "
                 "WHERE article_id NOT IN (SELECT id FROM article)")
        ).scalars().all()  # fmt: skip
        _forget(connection, list(orphans))
        if commit is not None:
            commit()
    return done


def outside_models(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """For Alembic's ``include_name``: whether a schema name is the models' (not the index's)."""
    if type_ == "table":
        return name not in INDEX_TABLES
    if type_ == "column":
        return name != VECTOR_COLUMN
    if type_ == "index":
        return name != VECTOR_INDEX
    return True


def unindexed(connection: Connection, ids: Iterable[int]) -> list[int]:
    """Which of these articles have no index entry (for tests and checks)."""
    wanted = list(ids)
    stored = _stored_entries(connection, wanted) if wanted else {}
    return [article_id for article_id in wanted if article_id not in stored]
