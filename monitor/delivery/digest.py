"""Digests: plan a delivery and its articles in the outbox, and gather what the e-mail shows."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, not_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from monitor.db import dialect_insert
from monitor.delivery.subscriptions import DueGroup, _stream_pattern
from monitor.models import (
    Article,
    Channel,
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Feed,
    Frequency,
    Match,
    Sighting,
    Subscriber,
    Subscription,
    Topic,
    TopicPriority,
)
from monitor.text import shorten

# A title longer than this is cut in a digest's list (its link leads to the whole article).
MAX_TITLE_CHARS = 300


def new_message_id(domain: str) -> str:
    """A Message-ID fixed when the delivery is planned, so a resend carries the same one."""
    return f"<digest.{secrets.token_hex(12)}@{domain or 'monitor.localhost'}>"


def new_idempotency_key() -> str:
    """A channel delivery's idempotency key (its Message-ID, so to speak), fixed when it is
    planned: every attempt sends it in the payload and the ``webhook-id`` header."""
    return f"msg_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """A delivery written to the outbox, with how many articles it holds (0: nothing to send)."""

    delivery_id: int
    subscriber_id: int
    items: int


def candidate_items(session: Session, group: DueGroup) -> list[tuple[int, int]]:
    """(article, topic) pairs matched for the group and new to this subscriber.

    Each article appears once, under the first of its topics by ``topic_rank``: a high-priority
    topic first, then the best score, then the slug. Backlog (published well before it was
    first seen: a new feed's archive) is never sent. An article is left out when
    it was given to this subscriber before, or when its story was: a syndicated copy of a
    story an earlier digest of the same stream carried (sent or still pending) is no news.
    Story membership is fixed when an article is stored, so neither an edit of a delivered
    article (it keeps its key, and is never listed again) nor a copy that arrives after the
    edit brings the story back; a rewritten update reads differently and is a story of its own.
    Copies within this one digest all stay: the digest shows them together, as one story.
    """
    delivered = select(DeliveryItem.article_id).where(_delivered_to(group))
    rows = session.exec(
        select(Match.article_id, Match.topic_id, Match.score)
        .join(Article, col(Article.id) == Match.article_id)
        .where(
            col(Match.topic_id).in_(group.topic_ids),
            col(Article.first_seen_at) >= group.since,
            not_(col(Article.backlog)),
            col(Match.article_id).not_in(delivered),
            ~_story_delivered(group),
        )
    ).all()
    topics = {
        topic_id: (priority, slug)
        for topic_id, priority, slug in session.exec(
            select(Topic.id, Topic.priority, Topic.slug).where(col(Topic.id).in_(group.topic_ids))
        )
    }
    best: dict[int, tuple[tuple[int, float, str], int]] = {}
    for article_id, topic_id, score in rows:
        priority, slug = topics[topic_id]
        rank = topic_rank(priority, score, slug)
        if article_id not in best or rank < best[article_id][0]:
            best[article_id] = (rank, topic_id)
    return sorted((article_id, topic_id) for article_id, (_, topic_id) in best.items())


def topic_rank(priority: str, score: float, slug: str) -> tuple[int, float, str]:
    """How a topic ranks for an article (lowest first): high priority, best score, slug."""
    return (0 if priority == TopicPriority.HIGH else 1, -score, slug)


def _delivered_to(group: DueGroup) -> ColumnElement[bool]:
    """Items the group's recipient was given: the subscriber's by e-mail, or the channel's."""
    if group.channel_id is not None:
        return col(DeliveryItem.channel_id) == group.channel_id
    return col(DeliveryItem.subscriber_id) == group.subscriber_id


def _story_delivered(group: DueGroup) -> ColumnElement[bool]:
    """Whether the candidate article's story is in an earlier delivery of the group's stream.

    Correlated on the candidate's story: the article index on story_id finds its few members,
    the unique (subscriber, article) index their items, however long the subscriber's history.
    """
    member = aliased(Article)
    return (
        select(DeliveryItem.id)
        .join(member, col(member.id) == DeliveryItem.article_id)
        .join(Delivery, col(Delivery.id) == DeliveryItem.delivery_id)
        .where(
            _delivered_to(group),
            col(member.story_id) == col(Article.story_id),
            col(Delivery.period_key).like(_stream_pattern(group.period_key)),
        )
        .exists()
    )


def plan_delivery(
    session: Session, group: DueGroup, *, message_domain: str, now: datetime
) -> PlannedDelivery | None:
    """Write the delivery and its items in the caller's transaction, before anything is sent.

    Returns None when this subscriber's period was already planned (by this or another process).
    A period with nothing new is recorded as empty, so it is not considered again, or as a
    pending delivery without items when the subscriber wants a "nothing new" notice. A group
    that does not record empty periods (instant) leaves nothing behind and returns None.
    """
    pairs = None
    if not group.record_empty:
        # Checked before writing: an instant group is considered every tick, mostly for nothing.
        pairs = candidate_items(session, group)
        if not pairs:
            return None
    inserted = session.execute(
        dialect_insert(session, Delivery)
        .values(
            subscriber_id=group.subscriber_id,
            channel_id=group.channel_id,
            period_key=group.period_key,
            status=DeliveryStatus.PENDING,
            message_id=(
                new_idempotency_key()
                if group.channel_id is not None
                else new_message_id(message_domain)
            ),
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "period_key"])
        .returning(col(Delivery.id))
    ).scalar()
    if inserted is None:
        return None
    if pairs is None:
        pairs = candidate_items(session, group)
    count = 0
    if pairs:
        # A channel's items are the channel's alone: e-mail does not count them as delivered.
        channel = group.channel_id is not None
        rows = [
            {
                "delivery_id": inserted,
                "subscriber_id": None if channel else group.subscriber_id,
                "channel_id": group.channel_id,
                "article_id": article_id,
                "topic_id": topic_id,
            }
            for article_id, topic_id in pairs
        ]
        count = len(
            session.execute(
                dialect_insert(session, DeliveryItem)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=["channel_id" if channel else "subscriber_id", "article_id"]
                )
                .returning(col(DeliveryItem.id))
            ).all()
        )
    if count == 0 and not group.record_empty:
        # Another process delivered these articles meanwhile: nothing for this tick after all.
        session.execute(delete(Delivery).where(col(Delivery.id) == inserted))
        return None
    if count == 0 and not group.notify_empty:
        session.execute(
            update(Delivery).where(col(Delivery.id) == inserted).values(status=DeliveryStatus.EMPTY)
        )
    return PlannedDelivery(inserted, group.subscriber_id, count)


@dataclass(frozen=True, slots=True)
class AlsoCarried:
    """Another outlet that carried the story, and its copy's link."""

    outlet: str
    url: str


@dataclass(frozen=True, slots=True)
class DigestArticle:
    """One story as a digest shows it: its lead article, then the other outlets that carried
    it (``also``); ``*_highlights`` are character ranges to mark."""

    title: str
    url: str
    outlet: str
    published_at: datetime | None
    first_seen_at: datetime
    excerpt: str
    terms: tuple[str, ...]
    title_highlights: tuple[tuple[int, int], ...] = ()
    excerpt_highlights: tuple[tuple[int, int], ...] = ()
    also: tuple[AlsoCarried, ...] = ()
    # The article's language: detected from its text, else its feed's ("" when neither).
    language: str = ""
    story_id: int | None = None

    @property
    def title_segments(self) -> list[tuple[str, bool]]:
        """The title as (text, highlighted) pieces, for templates that escape each piece."""
        return segments(self.title, self.title_highlights)

    @property
    def excerpt_segments(self) -> list[tuple[str, bool]]:
        """The excerpt as (text, highlighted) pieces."""
        return segments(self.excerpt, self.excerpt_highlights)


def segments(text: str, highlights: Sequence[Sequence[int]]) -> list[tuple[str, bool]]:
    """Split ``text`` into plain and highlighted pieces; overlapping ranges are merged."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for start, end in sorted((int(s), int(e)) for s, e in highlights):
        start, end = max(start, position), min(end, len(text))
        if start >= end:
            continue
        if start > position:
            pieces.append((text[position:start], False))
        pieces.append((text[start:end], True))
        position = end
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


@dataclass(slots=True)
class DigestSection:
    """The stories of one topic, newest first, each once; ``more`` counts the stories left out
    (the digest's cap, ``digest.max_articles``), ``more_articles`` the articles they hold."""

    slug: str
    name: str
    articles: list[DigestArticle] = field(default_factory=list)
    more: int = 0
    more_articles: int = 0
    priority: str = TopicPriority.NORMAL

    @property
    def stories(self) -> int:
        """Every story of the section, listed or not: the count its heading shows."""
        return len(self.articles) + self.more


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a digest e-mail says, independent of how it is rendered."""

    delivery_id: int
    message_id: str
    email: str
    name: str
    timezone: str
    created_at: datetime
    sections: list[DigestSection]
    # Who and which subscriptions the digest serves: what its unsubscribe link ends.
    subscriber_id: int = 0
    topic_ids: tuple[int, ...] = ()
    # "daily", "weekly", "hourly", "instant", or "" for one sent on demand.
    frequency: str = ""
    # The previous digest's time (or the subscription's start): "nothing new since ...".
    since: datetime | None = None
    # Articles the digest covers, every copy of a story counted (``total`` counts stories).
    articles: int = 0

    @property
    def total(self) -> int:
        """How many stories the digest covers, shown or not (a story lists its copies once)."""
        return sum(len(s.articles) + s.more for s in self.sections)


CHANNEL_PERIOD = re.compile(r"^ch(\d+)/")


def channel_period_key(channel_id: int, period_key: str) -> str:
    """A channel's own period key: ``ch3/daily:2024-09-09@08:00``. Prefixed, a channel's
    periods are never a subscriber's e-mail periods, and each channel's are its own."""
    return f"ch{channel_id}/{period_key}"


def channel_period(period_key: str) -> str:
    """The period of a channel's key without its channel (``daily:...``); others unchanged."""
    return CHANNEL_PERIOD.sub("", period_key, count=1)


def frequency_of(period_key: str) -> str:
    """The frequency a period key starts with ("weekly:2024-W37" is weekly); "" for others."""
    prefix = period_key.partition(":")[0]
    return prefix if prefix in set(Frequency) else ""


def excerpt(text: str, limit: int) -> str:
    """The start of ``text`` cut at a word boundary near ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:-") + " …"


def load_digest(
    session: Session, delivery_id: int, *, max_articles: int, excerpt_chars: int
) -> Digest:
    """Gather a planned delivery's stories, in the digest's one order (``order_stories``), the
    first ``max_articles`` of them listed and the rest counted per section."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"delivery {delivery_id} does not exist")
    subscriber = session.get(Subscriber, delivery.subscriber_id)
    if subscriber is None:
        raise LookupError(f"subscriber {delivery.subscriber_id} does not exist")
    rows = session.exec(
        select(Article, Topic, Feed, Match)
        .join(DeliveryItem, col(DeliveryItem.article_id) == Article.id)
        .join(Topic, col(Topic.id) == DeliveryItem.topic_id)
        .join(Feed, col(Feed.id) == Article.feed_id)
        # Outer: a retag after planning may have dropped the match; the article still goes.
        .join(
            Match,
            (col(Match.article_id) == DeliveryItem.article_id)
            & (col(Match.topic_id) == DeliveryItem.topic_id),
            isouter=True,
        )
        .where(DeliveryItem.delivery_id == delivery_id)
    ).all()
    carriers = _carriers(session, [article for article, _topic, _feed, _match in rows])
    sections: dict[int, DigestSection] = {}
    shown = 0
    for story in order_stories([_Item(*row) for row in rows]):
        topic = story.topic
        section = sections.setdefault(
            topic.id or 0, DigestSection(topic.slug, topic.name, priority=topic.priority)
        )
        if shown >= max_articles:
            section.more += 1
            section.more_articles += story.articles
            continue
        lead = story.lead
        also = tuple(c for c in carriers.get(_story_key(lead.article), ()) if c[0] != lead.feed.id)
        shown_article = _digest_article(lead.article, lead.feed, lead.match, excerpt_chars)
        section.articles.append(
            replace(shown_article, also=tuple(AlsoCarried(o, u) for _f, o, u in also))
        )
        shown += 1
    frequency = frequency_of(channel_period(delivery.period_key))
    subscriptions = _subscriptions_of(session, subscriber.id or 0, frequency)
    return Digest(
        delivery_id=delivery_id,
        message_id=delivery.message_id,
        email=subscriber.email,
        name=subscriber.name,
        timezone=subscriber.timezone,
        created_at=delivery.created_at,
        sections=list(sections.values()),
        subscriber_id=subscriber.id or 0,
        topic_ids=tuple(sorted({s.topic_id for s in subscriptions} | set(sections))),
        frequency=frequency,
        since=_previous_digest_time(session, delivery, frequency)
        or _started(subscriptions, session, delivery),
        articles=len(rows),
    )


@dataclass(frozen=True, slots=True)
class _Item:
    """One delivered article, the topic it was delivered under, its feed and its match."""

    article: Article
    topic: Topic
    feed: Feed
    match: Match | None


@dataclass(frozen=True, slots=True)
class _Story:
    """The delivered copies of one story: its lead, the topic it is filed under, its size."""

    lead: _Item
    topic: Topic
    articles: int
    newest: tuple[float, float, int]


def order_stories(items: Sequence[_Item]) -> list[_Story]:
    """The digest's one order: each story once, in the section it is filed under, sections
    and stories in the order the e-mail lists them.

    - A story is filed under the best of the topics its copies were delivered under: a
      high-priority topic first, then the best score, then the slug (``topic_rank``).
    - Sections: high-priority topics first, then by name.
    - In a section, newest first: by when the story's newest copy was first seen, then (one
      poll run sees many at the same moment) by its newest publication time, then in the order
      the feed listed them. Undated items come after dated ones seen at the same moment.
    - A story is led by its first copy seen; the others are "also carried by".
    """
    by_story: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        by_story[_story_key(item.article)].append(item)
    stories = [_story_of(copies) for copies in by_story.values()]
    return sorted(stories, key=lambda story: (_section_rank(story.topic), story.newest))


def _story_of(copies: list[_Item]) -> _Story:
    lead = min(copies, key=lambda item: (item.article.first_seen_at, item.article.id or 0))
    best: dict[int, tuple[tuple[int, float, str], Topic]] = {}
    for item in copies:
        rank = topic_rank(item.topic.priority, item.match.score if item.match else 0.0,
                          item.topic.slug)  # fmt: skip
        known = best.get(item.topic.id or 0)
        if known is None or rank < known[0]:
            best[item.topic.id or 0] = (rank, item.topic)
    topic = min(best.values(), key=lambda found: found[0])[1]
    seen = max(item.article.first_seen_at for item in copies)
    dated = [item.article.published_at for item in copies if item.article.published_at]
    newest = (
        -seen.timestamp(),
        -max(dated).timestamp() if dated else float("inf"),
        # Feeds list their newest item first, and a poll stores items in the feed's order.
        min(item.article.id or 0 for item in copies),
    )
    return _Story(lead, topic, len(copies), newest)


def _section_rank(topic: Topic) -> tuple[int, str, str]:
    return (0 if topic.priority == TopicPriority.HIGH else 1, topic.name, topic.slug)


def _story_key(article: Article) -> int:
    """A story's id; an article stored before stories existed is a story of its own."""
    return article.story_id if article.story_id is not None else -(article.id or 0)


def _carriers(session: Session, articles: list[Article]) -> dict[int, list[tuple[int, str, str]]]:
    """(feed id, outlet, link) of every outlet that carried each story, first seen first."""
    story_ids = {a.story_id for a in articles if a.story_id is not None}
    loose = {a.id for a in articles if a.story_id is None}
    rows = session.exec(
        select(Article, Feed)
        .join(Sighting, col(Sighting.article_id) == Article.id)
        .join(Feed, col(Feed.id) == Sighting.feed_id)
        .where(col(Article.story_id).in_(story_ids) | col(Article.id).in_(loose))
        .order_by(col(Sighting.first_seen_at), col(Feed.id))
    ).all()
    carriers: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for article, feed in rows:
        outlets = carriers[_story_key(article)]
        if all(feed.id != known for known, _outlet, _url in outlets):
            outlets.append((feed.id or 0, _outlet_name(feed), article.url))
    return carriers


def _outlet_name(feed: Feed) -> str:
    return feed.title or urlsplit(feed.url).hostname or feed.url


def _subscriptions_of(session: Session, subscriber_id: int, frequency: str) -> list[Subscription]:
    """The subscriptions a digest of ``frequency`` serves (all of them for one on demand)."""
    statement = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if frequency:
        statement = statement.where(Subscription.frequency == frequency)
    return list(session.exec(statement))


def _previous_digest_time(session: Session, delivery: Delivery, frequency: str) -> datetime | None:
    """When the same stream (same frequency, same channel or e-mail) last planned a digest
    for this subscriber."""
    statement = select(func.max(Delivery.created_at)).where(
        Delivery.subscriber_id == delivery.subscriber_id,
        col(Delivery.created_at) < delivery.created_at,
    )
    prefix = f"{frequency}:" if frequency else ""
    if delivery.channel_id is not None:
        statement = statement.where(Delivery.channel_id == delivery.channel_id)
        prefix = channel_period_key(delivery.channel_id, prefix)
    else:
        statement = statement.where(col(Delivery.channel_id).is_(None))
    if prefix:
        statement = statement.where(col(Delivery.period_key).startswith(prefix))
    return session.exec(statement).first()


def _started(
    subscriptions: list[Subscription], session: Session, delivery: Delivery
) -> datetime | None:
    if delivery.channel_id is not None:
        channel = session.get(Channel, delivery.channel_id)
        return channel.created_at if channel is not None else None
    return min((s.created_at for s in subscriptions), default=None)


def _digest_article(
    article: Article, feed: Feed, match: Match | None, excerpt_chars: int
) -> DigestArticle:
    if match is None:
        match = Match(article_id=article.id or 0, topic_id=0, topic_version=0, score=0.0)
    # The matcher's snippet sits around the matched words; older matches have none.
    text = match.snippet or excerpt(article.summary or article.content, excerpt_chars)
    return DigestArticle(
        title=shorten(article.title or "(untitled)", MAX_TITLE_CHARS),
        url=article.url,
        outlet=_outlet_name(feed),
        published_at=article.published_at,
        first_seen_at=article.first_seen_at,
        excerpt=text,
        terms=tuple(match.terms),
        title_highlights=tuple(
            (int(start), int(end)) for field, start, end in match.spans if field == "title"
        ),
        excerpt_highlights=tuple((s, e) for s, e in match.snippet_spans) if match.snippet else (),
        language=article.detected_language or article.language,
        story_id=article.story_id,
    )
