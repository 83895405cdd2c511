"""Everything a fetched document needs before it touches the database, on plain data.

Parsing, cleaning, story signatures and tagging cost CPU, not I/O: ``prepare_batch`` runs them
for a batch of documents in a worker process (see ``monitor.ingest.pool``), so the event loop
keeps fetching and every core is busy. Its inputs and results are picklable values; nothing in
here opens a database or a connection.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from monitor.errors import FeedError
from monitor.ingest.canonical import ArticleKey, article_keys
from monitor.ingest.language import detect_entry_language, effective_language
from monitor.ingest.sketch import Sketch, StoryRules, sketch_entries
from monitor.sources.parse import ParsedEntry, ParsedFeed, parse_feed
from monitor.text import article_text
from monitor.topics.matcher import ArticleView, Matcher, TopicHit, TopicRule
from monitor.topics.query import parse_query

if TYPE_CHECKING:  # the ORM stays out of the worker processes: it is some 40 MB each
    from monitor.models import Topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSet:
    """The enabled topics as plain values: what a worker process compiles its matcher from."""

    fingerprint: str
    # (topic id, slug, version, query text) per topic.
    topics: tuple[tuple[int, str, int, str], ...]


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """A fetched body to prepare, with what tagging needs to know of its feed."""

    feed_id: int
    url: str
    body: bytes
    content_type: str | None
    feed_title: str
    feed_url: str


@dataclass(frozen=True, slots=True)
class PreparedFeed:
    """A parsed document, each entry's key and story sketch, and the topic hits by key (under
    each of an entry's candidate keys, see ``ArticleKey``)."""

    parsed: ParsedFeed
    keys: tuple[ArticleKey, ...]
    sketches: tuple[Sketch | None, ...]
    hits: dict[str, tuple[TopicHit, ...]]
    # Each entry's detected language ("" when its text is too short to tell).
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A document that could not be prepared: why, and whether it was our fault (a bug)."""

    reason: str
    internal: bool = False
    details: str = ""


Prepared = PreparedFeed | Unreadable

# A worker process compiles the matcher once per topic set, not once per document. Module
# state, because it lives exactly as long as the worker process that uses it.
_MATCHERS: dict[str, Matcher] = {}


def topic_set(topics: Sequence[Topic]) -> TopicSet:
    """The given topics as a TopicSet, fingerprinted by their ids, versions and queries."""
    specs = tuple((t.id or 0, t.slug, t.version, t.query) for t in topics)
    fingerprint = hashlib.sha256(repr(specs).encode()).hexdigest()[:16]
    return TopicSet(fingerprint, specs)


def matcher_for(topics: TopicSet) -> Matcher:
    """The compiled matcher of a topic set, compiled once per process."""
    matcher = _MATCHERS.get(topics.fingerprint)
    if matcher is None:
        _MATCHERS.clear()
        rules = (TopicRule(i, slug, v, parse_query(query)) for i, slug, v, query in topics.topics)
        matcher = _MATCHERS[topics.fingerprint] = Matcher(rules)
    return matcher


def entry_view(
    entry: ParsedEntry, *, feed_title: str, feed_url: str, detected_language: str = ""
) -> ArticleView:
    """What the matcher reads of an entry: the same as of the article stored from it."""
    return ArticleView(
        title=entry.title,
        text=article_text(entry.summary, entry.content),
        author=entry.author,
        url=entry.link or "",
        feed_title=feed_title,
        feed_url=feed_url,
        language=effective_language(detected_language, entry.language[:35]),
    )


def prepare_feed(document: FeedDocument, topics: TopicSet, rules: StoryRules) -> PreparedFeed:
    """Parse one document, sketch its entries for stories and tag them; raise FeedError."""
    parsed = drop_empty_entries(
        parse_feed(document.body, url=document.url, content_type=document.content_type)
    )
    entries = parsed.entries
    sketches = sketch_entries([(e.title, e.content or e.summary) for e in entries], rules)
    # Keys here too: canonical URLs and content fingerprints are CPU the writer need not spend.
    keys = article_keys(
        entries,
        feed_id=document.feed_id,
        tracking=rules.tracking_parameters,
        site_url=parsed.site_url,
        feed_url=document.feed_url,
    )
    languages = tuple(map(detect_entry_language, entries))
    matcher = matcher_for(topics)
    hits: dict[str, tuple[TopicHit, ...]] = {}
    if matcher.rules:
        feed_title = parsed.title or document.feed_title
        tagged: set[str] = set()
        for entry, key, language in zip(entries, keys, languages, strict=True):
            # The first entry of a key is the one stored, as in entries_to_rows.
            if key.key_hash in tagged:
                continue
            tagged.add(key.key_hash)
            view = entry_view(
                entry,
                feed_title=feed_title,
                feed_url=document.feed_url,
                detected_language=language,
            )
            found = tuple(matcher.match(view))
            if found:
                # The writer may store the entry under its other key (the archive knows its
                # link to be shared, or holds it under its link): the hits follow it there.
                for alias in (key.key_hash, key.link_hash, key.own_hash):
                    if alias:
                        hits.setdefault(alias, found)
    return PreparedFeed(parsed, tuple(keys), tuple(sketches), hits, languages)


def drop_empty_entries(parsed: ParsedFeed) -> ParsedFeed:
    """The feed without its items that have no link, no title and no text (what a truncated
    document leaves of its last item), their number added to its warning."""
    kept = [entry for entry in parsed.entries if _has_substance(entry)]
    skipped = len(parsed.entries) - len(kept)
    if not skipped:
        return parsed
    note = f"{skipped} {'item' if skipped == 1 else 'items'} without a link, title or text skipped"
    return replace(parsed, entries=kept, warning=f"{parsed.warning}; {note}" if parsed.warning
                   else note)  # fmt: skip


def _has_substance(entry: ParsedEntry) -> bool:
    return any(part.strip() for part in (entry.link or "", entry.title, entry.summary,
                                          entry.content))  # fmt: skip


def prepare_batch(
    documents: Sequence[FeedDocument], topics: TopicSet, rules: StoryRules
) -> list[Prepared]:
    """Prepare each document; a document that fails becomes an Unreadable, never an exception.

    One bad document must not cost the batch, and exceptions do not always survive the trip
    back from a worker process (their constructors may take other arguments), values do.
    """
    results: list[Prepared] = []
    for document in documents:
        try:
            results.append(prepare_feed(document, topics, rules))
        except FeedError as exc:
            results.append(Unreadable(exc.reason))
        except Exception as exc:  # a bug must cost one feed, not the batch
            results.append(
                Unreadable(
                    f"internal error: {type(exc).__name__}: {exc}",
                    internal=True,
                    details=traceback.format_exc(),
                )
            )
    return results
