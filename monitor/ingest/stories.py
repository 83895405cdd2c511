"""Stories: near-duplicate articles across outlets (wire copies, syndication) joined as one.

An article's *signature* is a MinHash of the word 3-shingles of its title and lead text, with
boilerplate taken out first (newsletter footers, bylines, "Live updates:" prefixes, paragraphs a
feed repeats under every item). The signature is cut into ``BANDS`` bands of ``ROWS`` values;
each band's hash is a row of ``story_band``, so the LSH index lives in the database: it survives
restarts, every worker shares it, and nothing grows in memory with the archive. Bands are taken
of two signatures: of the title and opening words, and of the whole lead. Articles agreeing on
any band within the story window are candidates; a candidate joins only when the signatures say
that at least ``threshold`` of the shorter lead's shingles are in the other (see similarity).

An article whose lead text has too few words to tell copies from look-alikes (an empty summary,
a title alone) gets a story of its own and no bands.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from datasketch import MinHash
from sqlalchemy import ColumnElement, bindparam, func, select, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col

from monitor.db import dialect_insert
from monitor.models import Article, Story
from monitor.text import fold, split_words

NUM_PERM = 64
BANDS = 21
ROWS = 3
SHINGLE_WORDS = 3
# Fixed, so that signatures stored by one process compare with those of every other.
SEED = 20240906
# datasketch builds its permutations (most of its cost) per MinHash unless they are shared.
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=SEED).permutations
_SCHEME = "affine32"

STORIES = SQLModel.metadata.tables["story"]
BAND_ROWS = SQLModel.metadata.tables["story_band"]
SIGHTINGS = SQLModel.metadata.tables["sighting"]
ARTICLES = SQLModel.metadata.tables["article"]
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises story assignment.
_STORY_LOCK = 0x6D6F6E5F73746F72

# Headline prefixes that label a format, not a story ("Live updates: ...", "WATCH: ...").
_TITLE_LABEL = re.compile(
    r"^\s*(?:live(?:\s+updates?|\s+blog)?|breaking(?:\s+news)?|watch|video|opinion|analysis|"
    r"explainer|exclusive|updated?|podcast|photos?|in\s+pictures)\s*[:|\-\u2013\u2014]\s*",
    re.IGNORECASE,
)
# Paragraphs that say nothing about the story: footers, calls to action, credits, bylines.
_BOILERPLATE = re.compile(
    r"newsletter|sign\s+up|subscribe|all\s+rights\s+reserved|copyright|©|\(c\)\s*\d{4}|"
    r"appeared\s+first\s+on|read\s+more|continue\s+reading|click\s+here|follow\s+us|"
    r"download\s+(?:our|the)\s+app|originally\s+(?:published|appeared)|"
    r"support\s+(?:our|independent)\s+journalism|share\s+this\s+(?:story|article)",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^\s*(?:by|von|par|por|reporting\s+by|written\s+by)\s+\S", re.IGNORECASE)
_BYLINE_MAX_WORDS = 12


@dataclass(frozen=True, slots=True)
class StoryRules:
    """How stories are formed: window, similarity threshold, how much text is compared."""

    window: timedelta = timedelta(days=7)
    threshold: float = 0.55
    lead_words: int = 200
    probe_words: int = 40
    min_words: int = 12
    # Query parameters to drop from links besides the built-in tracking parameters.
    tracking_parameters: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Indexed:
    """An article of the index as a lookup sees it."""

    article_id: int
    story_id: int
    signature: np.ndarray


@dataclass(slots=True)
class StoryAssignment:
    """What assigning a batch did: stories started and articles joined to existing stories."""

    new_stories: int = 0
    joined: int = 0
    story_ids: list[int] = field(default_factory=list)


def repeated_paragraphs(texts: Iterable[str]) -> frozenset[str]:
    """Paragraphs (lower-cased) that appear under two or more items of one feed: boilerplate."""
    counts: Counter[str] = Counter()
    for text_ in texts:
        counts.update({_paragraph_key(p) for p in _paragraphs(text_)} - {""})
    return frozenset(key for key, n in counts.items() if n > 1)


def _paragraphs(text_: str) -> list[str]:
    return [line for line in text_.split("\n") if line.strip()]


def _paragraph_key(paragraph: str) -> str:
    # Exact text, spacing and case aside: a feed repeats its boilerplate verbatim.
    return " ".join(paragraph.lower().split())


def lead_words(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """The folded words of the title (without a format label) and of the lead text."""
    title_words = split_words(fold(_TITLE_LABEL.sub("", title)))
    words: list[str] = []
    for paragraph in _paragraphs(body):
        if _is_boilerplate(paragraph) or (boilerplate and _paragraph_key(paragraph) in boilerplate):
            continue
        words.extend(split_words(fold(paragraph)))
        if len(words) >= rules.lead_words:
            break
    return title_words, words[: rules.lead_words]


def _is_boilerplate(paragraph: str) -> bool:
    if _BOILERPLATE.search(paragraph):
        return True
    return bool(_BYLINE.match(paragraph)) and len(paragraph.split()) <= _BYLINE_MAX_WORDS


@dataclass(frozen=True, slots=True)
class Sketch:
    """What the index knows of an article: its signature and its LSH band keys."""

    signature: np.ndarray
    bands: list[int]


def sketch_of(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> Sketch | None:
    """The article's signature (of title and lead) and band keys (of title and opening).

    The bands come from the opening words only: a copy trimmed at the end or missing a later
    paragraph shares its opening with the original even when the whole leads differ in size,
    and MinHash bands find only sets of similar size. None when the lead is too short to tell.
    """
    title_words, body_words = lead_words(title, body, rules=rules, boilerplate=boilerplate)
    if len(body_words) < rules.min_words:
        return None
    signature = _minhash(title_words + body_words, sized=True)
    probe = _minhash(title_words + body_words[: rules.probe_words])
    # Bands of both: the opening finds trimmed copies, the whole lead finds copies whose
    # opening was rewritten.
    return Sketch(signature, band_hashes(probe, first=0) + band_hashes(signature, first=BANDS))


def signature_of(
    title: str, body: str, *, rules: StoryRules, boilerplate: frozenset[str] = frozenset()
) -> np.ndarray | None:
    """The MinHash signature of title and lead text, then the number of shingles it covers.

    None when the lead is too short to tell a copy from a look-alike.
    """
    sketch = sketch_of(title, body, rules=rules, boilerplate=boilerplate)
    return sketch.signature if sketch is not None else None


def _minhash(words: list[str], *, sized: bool = False) -> np.ndarray:
    # CRC-32 of each shingle (C speed, the same in every process) given to datasketch as the
    # hash itself: its default SHA-1 per shingle in Python was most of the time.
    hashes = {
        zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode())
        for i in range(max(1, len(words) - SHINGLE_WORDS + 1))
    }
    minhash = MinHash(
        num_perm=NUM_PERM, permutations=_PERMUTATIONS, scheme=_SCHEME, hashfunc=_given
    )
    minhash.update_batch(list(hashes))
    values = np.asarray(minhash.hashvalues, dtype=np.uint32)
    return np.append(values, np.uint32(len(hashes))) if sized else values


def _given(value: int) -> int:
    """The hash function of our MinHashes: the shingle's CRC-32, computed beforehand."""
    return value


def band_hashes(signature: np.ndarray, *, first: int = 0) -> list[int]:
    """The LSH band keys of a signature: a signed 64-bit hash of each band and its number."""
    keys = []
    for band in range(BANDS):
        chunk = signature[band * ROWS : (band + 1) * ROWS].tobytes()
        number = (first + band).to_bytes(2, "big")
        digest = hashlib.blake2b(chunk, digest_size=8, person=number).digest()
        keys.append(int.from_bytes(digest, "big", signed=True))
    return keys


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """How much of the shorter lead the longer one holds, estimated from the signatures.

    The share of equal MinHash values estimates the Jaccard similarity J of the shingle sets;
    with their sizes that gives the overlap |A & B| = J (|A| + |B|) / (1 + J), here divided by
    the smaller set. A copy trimmed at the end, or missing a paragraph, is mostly contained in
    the original even when their Jaccard similarity is low.
    """
    jaccard = float(np.count_nonzero(first[:NUM_PERM] == second[:NUM_PERM])) / NUM_PERM
    size_a, size_b = int(first[NUM_PERM]), int(second[NUM_PERM])
    overlap = jaccard * (size_a + size_b) / (1 + jaccard)
    return min(1.0, overlap / max(1, min(size_a, size_b)))


def signature_bytes(signature: np.ndarray) -> bytes:
    """A signature as stored in ``article.signature`` (little-endian uint32 values)."""
    return signature.astype("<u4").tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    """A stored signature back as an array."""
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def article_body(article: Article) -> str:
    """The text a story signature reads: the content, else the summary."""
    return article.content or article.summary


def lock_stories(session: Session) -> None:
    """Serialise story assignment between workers on PostgreSQL until the transaction ends.

    Without it two workers ingesting copies of one story at once would each find no copy (the
    other's rows are not committed yet) and start two stories. SQLite needs nothing: a write
    transaction there already holds the database's one write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STORY_LOCK})


def assign_stories(
    session: Session,
    articles: Sequence[Article],
    *,
    now: datetime,
    rules: StoryRules,
    boilerplate: frozenset[str] = frozenset(),
) -> StoryAssignment:
    """Put each new article in the story of its nearest copy within the window, or a new one."""
    result = StoryAssignment()
    if not articles:
        return result
    sketches = [
        sketch_of(a.title, article_body(a), rules=rules, boilerplate=boilerplate) for a in articles
    ]
    signatures = [sketch.signature if sketch else None for sketch in sketches]
    bands = [sketch.bands if sketch else [] for sketch in sketches]
    index = _candidates(session, [b for per in bands for b in per], since=now - rules.window)
    # New stories get a provisional (negative) id until one INSERT creates them all.
    chosen: list[int] = []
    leads: list[Article] = []
    for article, signature, keys in zip(articles, signatures, bands, strict=True):
        story_id = _best_story(signature, keys, index, rules.threshold)
        if story_id is None:
            leads.append(article)
            story_id = -len(leads)
        chosen.append(story_id)
        if signature is not None:
            entry = _Indexed(article.id or 0, story_id, signature)
            for key in keys:
                # Later articles of the same batch may be copies of this one.
                index.setdefault(key, []).append(entry)
    real = _new_stories(session, leads)
    final = [real[-story_id - 1] if story_id < 0 else story_id for story_id in chosen]
    result.new_stories = len(leads)
    result.joined = len(articles) - len(leads)
    result.story_ids = final
    _write_assignments(session, articles, final, signatures, bands)
    return result


def _write_assignments(
    session: Session,
    articles: Sequence[Article],
    story_ids: list[int],
    signatures: list[np.ndarray | None],
    bands: list[list[int]],
) -> None:
    updates: list[dict[str, object]] = []
    band_rows: list[dict[str, object]] = []
    for article, story_id, signature, keys in zip(
        articles, story_ids, signatures, bands, strict=True
    ):
        # Set as loaded, not as a change: the UPDATE below writes every article of the batch.
        set_committed_value(article, "story_id", story_id)
        stored = signature_bytes(signature) if signature is not None else None
        updates.append({"b_id": article.id, "b_story": story_id, "b_signature": stored})
        band_rows.extend(
            {
                "band": key,
                "article_id": article.id,
                "story_id": story_id,
                "first_seen_at": article.first_seen_at,
            }
            for key in keys
        )
    session.execute(
        update(ARTICLES)
        .where(ARTICLES.c.id == bindparam("b_id"))
        .values(story_id=bindparam("b_story"), signature=bindparam("b_signature")),
        updates,
    )
    if band_rows:
        session.execute(dialect_insert(session, BAND_ROWS).on_conflict_do_nothing(), band_rows)


def _candidates(session: Session, keys: list[int], *, since: datetime) -> dict[int, list[_Indexed]]:
    """Indexed articles of the window sharing any of ``keys``, by band key."""
    found: dict[int, list[_Indexed]] = {}
    if not keys:
        return found
    unique = sorted(set(keys))
    # Chunks stay far below the bound-parameter limits of SQLite and PostgreSQL.
    for start in range(0, len(unique), 2000):
        rows = session.execute(
            select(
                BAND_ROWS.c.band, BAND_ROWS.c.article_id, BAND_ROWS.c.story_id, ARTICLES.c.signature
            )
            .join(ARTICLES, ARTICLES.c.id == BAND_ROWS.c.article_id)
            .where(
                BAND_ROWS.c.band.in_(unique[start : start + 2000]),
                BAND_ROWS.c.first_seen_at >= since,
            )
        ).all()
        for band, article_id, story_id, stored in rows:
            if stored is None:
                continue
            found.setdefault(band, []).append(
                _Indexed(article_id, story_id, signature_from_bytes(stored))
            )
    return found


def _best_story(
    signature: np.ndarray | None,
    keys: list[int],
    index: dict[int, list[_Indexed]],
    threshold: float,
) -> int | None:
    """The story of the most similar candidate at or above ``threshold`` (oldest on a tie)."""
    if signature is None:
        return None
    best: tuple[float, int] | None = None
    seen: set[int] = set()
    for key in keys:
        for candidate in index.get(key, ()):
            if candidate.article_id in seen:
                continue
            seen.add(candidate.article_id)
            score = similarity(signature, candidate.signature)
            if score < threshold:
                continue
            if best is None or (score, -candidate.story_id) > (best[0], -best[1]):
                best = (score, candidate.story_id)
    return best[1] if best else None


def _new_stories(session: Session, leads: list[Article]) -> list[int]:
    """Create a story led by each of ``leads``; their ids, in order."""
    if not leads:
        return []
    rows = [
        {
            "lead_article_id": article.id,
            "title": article.title,
            "first_seen_at": article.first_seen_at,
            "last_seen_at": article.first_seen_at,
            "article_count": 1,
            "outlet_count": 1,
        }
        for article in leads
    ]
    inserted = session.execute(
        STORIES.insert().returning(STORIES.c.id, sort_by_parameter_order=True), rows
    )
    return [int(story_id) for story_id in inserted.scalars()]


def refresh_story_counts(session: Session, *, key_hashes: Sequence[str], now: datetime) -> None:
    """Recount articles and distinct outlets of the stories of these articles; mark them seen."""
    for start in range(0, len(key_hashes), 5000):
        touched = select(col(Article.story_id)).where(
            col(Article.key_hash).in_(key_hashes[start : start + 5000]),
            col(Article.story_id).is_not(None),
        )
        _recount(session, STORIES.c.id.in_(touched), last_seen_at=now)


def recount_stories(session: Session, story_ids: Sequence[int]) -> None:
    """Recount articles and outlets of these stories, lead them by their first remaining
    article, and delete those left without any article (after a prune)."""
    for start in range(0, len(story_ids), 5000):
        chunk = list(story_ids[start : start + 5000])
        member = ARTICLES.alias("member")
        first = (
            select(func.min(member.c.id)).where(member.c.story_id == STORIES.c.id).scalar_subquery()
        )
        session.execute(
            update(STORIES).where(STORIES.c.id.in_(chunk)).values(lead_article_id=first)
        )
        lead = ARTICLES.alias("lead")
        title = select(lead.c.title).where(lead.c.id == STORIES.c.lead_article_id).scalar_subquery()
        session.execute(
            update(STORIES)
            .where(STORIES.c.id.in_(chunk), STORIES.c.lead_article_id.is_not(None))
            .values(title=title)
        )
        _recount(session, STORIES.c.id.in_(chunk))
        session.execute(
            STORIES.delete().where(STORIES.c.id.in_(chunk), STORIES.c.lead_article_id.is_(None))
        )


def _recount(session: Session, which: ColumnElement[bool], **values: object) -> None:
    member = ARTICLES.alias("member")
    outlets = (
        select(func.count(func.distinct(SIGHTINGS.c.feed_id)))
        .join(member, member.c.id == SIGHTINGS.c.article_id)
        .where(member.c.story_id == STORIES.c.id)
        .scalar_subquery()
    )
    articles = (
        select(func.count())
        .select_from(member)
        .where(member.c.story_id == STORIES.c.id)
        .scalar_subquery()
    )
    session.execute(
        update(STORIES).where(which).values(outlet_count=outlets, article_count=articles, **values)
    )


def retitle_stories(session: Session, titles: dict[int, str]) -> None:
    """Keep each story's title that of its lead article after the lead was edited."""
    if titles:
        session.execute(
            update(STORIES)
            .where(STORIES.c.lead_article_id == bindparam("b_id"))
            .values(title=bindparam("b_title")),
            [{"b_id": article_id, "b_title": title} for article_id, title in titles.items()],
        )


def story_of(session: Session, article_id: int) -> Story | None:
    """The story an article belongs to, if any."""
    article = session.get(Article, article_id)
    if article is None or article.story_id is None:
        return None
    return session.get(Story, article.story_id)


def prune_bands(session: Session, *, before: datetime) -> int:
    """Drop index rows older than ``before``: lookups never reach past the story window."""
    result = session.execute(BAND_ROWS.delete().where(BAND_ROWS.c.first_seen_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
