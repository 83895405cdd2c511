"""Tables. All times are stored in UTC; time zones appear only at the edges (digests, CLI)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Dialect,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so we store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; hand the database UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: monitor stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class FeedState(StrEnum):
    """Where a feed is in its life cycle."""

    ACTIVE = "active"
    ERRORING = "erroring"
    DISABLED = "disabled"  # not polled until retried: gone (410), or paused by an admin
    # Deleted with its articles kept: no longer polled nor listed, its row stays so that its
    # articles keep their source; adding its URL again brings it back.
    REMOVED = "removed"


# The states of feeds that are polled.
POLLED_STATES = (FeedState.ACTIVE, FeedState.ERRORING)


class FetchPages(StrEnum):
    """Whether a feed's new articles have their pages fetched for the full text."""

    AUTO = "auto"  # when the feed's text for the item is short (pages.auto_below)
    ALWAYS = "always"
    NEVER = "never"


class PageStatus(StrEnum):
    """Where an article's page is in the page queue."""

    PENDING = "pending"  # due at next_attempt_at (first try or a retry)
    DONE = "done"  # the body is stored
    FAILED = "failed"  # given up: the article keeps its feed text; reason says why


class DeliveryStatus(StrEnum):
    """Where a digest is in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    EMPTY = "empty"


class Feed(SQLModel, table=True):
    """A feed we poll, with what we need for polite conditional requests and health."""

    # Serves the claim of due feeds: due ones in order, those under a live lease skipped.
    __table_args__ = (Index("ix_feed_next_check_at_lease_until", "next_check_at", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=Text, unique=True)
    title: str = Field(default="", sa_type=Text)
    site_url: str = Field(default="", sa_type=Text)
    category: str = Field(default="", sa_type=Text)
    etag: str | None = Field(default=None, sa_type=Text)
    last_modified: str | None = Field(default=None, sa_type=Text)
    body_hash: str | None = Field(default=None, max_length=64)
    state: FeedState = Field(default=FeedState.ACTIVE, sa_type=String(16))
    disabled_reason: str | None = Field(default=None, sa_type=Text)
    interval_seconds: int = 900
    next_check_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_count: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Why interval_seconds is what it is, in words (monitor feeds show).
    interval_reason: str = Field(default="", sa_type=Text)
    # Items a day, from the dates of the items the feed listed at its last parsed check.
    items_per_day: float | None = None
    # The longest wait the feed or its server asked for (ttl, sy:*, max-age, Expires).
    hint_seconds: int | None = None
    hint_source: str | None = Field(default=None, max_length=40)
    # The last fetch sent without validators (some servers' validators lie).
    last_full_fetch_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The worker refreshing the feed now, until when: others skip it until the lease runs out.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What the last good check warned of (a malformed document, items skipped); None: nothing.
    last_warning: str | None = Field(default=None, sa_type=Text)
    # Until when the server asked us to wait (Retry-After); a manual poll honours it too.
    retry_after_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Whether new articles' pages are fetched for their full text (auto: short feed text only).
    fetch_pages: FetchPages = Field(default=FetchPages.AUTO, sa_type=String(8))
    # An interval an admin set: it replaces the adaptive one (None: adaptive).
    fixed_interval_seconds: int | None = None
    # An admin set the title: the feed's own title no longer replaces it.
    title_locked: bool = Field(default=False)


class Article(SQLModel, table=True):
    """One article, however many feeds carried it; keyed by a hash of its canonical key."""

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    canonical_url: str | None = Field(default=None, sa_type=Text)
    guid: str | None = Field(default=None, sa_type=Text)
    url: str = Field(default="", sa_type=Text)
    feed_id: int = Field(foreign_key="feed.id", index=True)
    title: str = Field(default="", sa_type=Text)
    summary: str = Field(default="", sa_type=Text)
    content: str = Field(default="", sa_type=Text)
    author: str = Field(default="", sa_type=Text)
    # The language the feed declared, and the one detected from the article's own text ("" when
    # the text was too short to tell); lang: tests the detected one, else the declared one.
    language: str = Field(default="", max_length=35)
    detected_language: str = Field(default="", max_length=35)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    content_hash: str = Field(max_length=64, index=True)
    # The story (cluster of near-duplicate copies across outlets) this article belongs to;
    # None only for articles stored before stories existed.
    story_id: int | None = Field(default=None, foreign_key="story.id", index=True)
    # An edit keeps the key: the title it replaced, and when the text last changed.
    previous_title: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # MinHash signature of the title and lead text (uint32 values); None when too short to tell.
    signature: bytes | None = Field(default=None, sa_type=LargeBinary)
    # The article's text as extracted from its page (bounded by pages.max_body_chars); empty
    # while only the feed's text is known. Written by monitor.pages.store.store_body alone.
    body: str = Field(default="", sa_type=Text)
    # The extractor that gave the body ("trafilatura", "readability"); empty without a body.
    body_method: str = Field(default="", max_length=32)
    # Published well before it was first seen (a new feed's archive, an old item listed late):
    # stored and searchable, but no news, so reports, digests and topic feeds leave it out.
    backlog: bool = Field(default=False)
    # Set only while the text shown came from another feed's richer copy: the content hash of
    # what the article's own feed last gave, so that unchanged text is not taken for an edit.
    source_hash: str | None = Field(default=None, max_length=64)


class ArticlePage(SQLModel, table=True):
    """An article's page in the page queue: fetch status, attempts, and what the page said.

    Kept apart from ``article``: the queue is written on every attempt and claimed by status
    and time (leases, as feeds have), and only articles whose pages are fetched have a row.
    The body itself lives in ``article.body``, where matching, search and digests read it.
    """

    __tablename__ = "article_page"
    __table_args__ = (
        Index("ix_article_page_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_article_page_host_last_attempt_at", "host", "last_attempt_at"),
    )

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    url: str = Field(sa_type=Text)
    host: str = Field(default="", max_length=255)
    status: PageStatus = Field(default=PageStatus.PENDING, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fetched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Why the last attempt failed ("fetch: HTTP 404 Not Found", "extract: a consent page").
    reason: str | None = Field(default=None, sa_type=Text)
    http_status: int | None = None
    # Where the page was in the end (after redirects), and the page's own canonical link
    # (link rel=canonical, og:url) with the key hash of it, by which copies are found.
    final_url: str | None = Field(default=None, sa_type=Text)
    canonical_url: str | None = Field(default=None, sa_type=Text)
    canonical_hash: str | None = Field(default=None, max_length=64, index=True)
    # What the page says of itself, kept whether or not the feed said it too.
    title: str = Field(default="", sa_type=Text)
    author: str = Field(default="", sa_type=Text)
    language: str = Field(default="", max_length=35)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bytes: int | None = None
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Story(SQLModel, table=True):
    """One story carried by several outlets: near-duplicate articles, led by the first seen.

    ``lead_article_id`` is the first article of the story (no foreign key: article and story
    refer to each other); ``outlet_count`` counts the distinct feeds that carried any of them.
    """

    id: int | None = Field(default=None, primary_key=True)
    lead_article_id: int | None = Field(default=None)
    title: str = Field(default="", sa_type=Text)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    article_count: int = 1
    outlet_count: int = 1


class StoryBand(SQLModel, table=True):
    """The LSH index of stories: one row per band of an article's MinHash signature.

    Articles whose signatures agree on any band are candidate copies of one another. Rows older
    than the story window are useless for lookups and are pruned.
    """

    __tablename__ = "story_band"
    # Keyed by band, then time: a lookup reads only the window's rows of each band, from the
    # key alone (no separate rowid table on SQLite). No foreign keys: checking two of them for
    # each of an article's 20 rows was most of the insert's time on PostgreSQL, and the rows
    # go before their article and story do (prune deletes them first).
    __table_args__ = {"sqlite_with_rowid": False}

    band: int = Field(sa_type=BigInteger, primary_key=True)
    first_seen_at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    article_id: int = Field(primary_key=True)
    story_id: int


class Tombstone(SQLModel, table=True):
    """The key of a pruned article: a feed that lists it again does not bring it back."""

    key_hash: str = Field(max_length=64, primary_key=True)
    pruned_at: datetime = Field(sa_type=UTCDateTime)


class SharedLink(SQLModel, table=True):
    """A link that several different items share (a home page, a landing page): no identity.

    Remembered so that the same items are keyed the same way by a later poll whose document no
    longer shows the sharing, and by other feeds linking there.
    """

    __tablename__ = "shared_link"

    link_hash: str = Field(max_length=64, primary_key=True)
    # The feed whose items first shared it, and when (no foreign key, as for tombstones).
    feed_id: int
    first_seen_at: datetime = Field(sa_type=UTCDateTime)


class Sighting(SQLModel, table=True):
    """An article seen in a feed: one URL in several feeds is one article, several sightings."""

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", primary_key=True, index=True)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TopicPriority(StrEnum):
    """How urgently a topic's matches should reach people."""

    NORMAL = "normal"
    HIGH = "high"


class Topic(SQLModel, table=True):
    """A watched topic. ``version`` grows whenever its query changes.

    ``tagged_version`` is the version stored articles were last retagged with; while it lags
    behind ``version`` a retag is due. ``source_hash`` is the hash of the topics.yaml entry last
    applied, so an edit made from the command line survives until the file entry changes.
    """

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    name: str = Field(sa_type=Text)
    description: str = Field(default="", sa_type=Text)
    query: str = Field(sa_type=Text)
    priority: TopicPriority = Field(default=TopicPriority.NORMAL, sa_type=String(16))
    enabled: bool = True
    version: int = 1
    tagged_version: int = 0
    source_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The topic's Atom feed: a private topic's feed is served only with this secret token.
    feed_token: str | None = Field(default=None, max_length=64, unique=True, index=True)
    private: bool = False


class Match(SQLModel, table=True):
    """An article matched by a topic: the words, where they are, and a snippet around them.

    ``spans`` are ``[field, start, end]`` character ranges of the article's title or text;
    ``snippet_spans`` are ``[start, end]`` ranges of ``snippet`` to highlight.
    """

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    topic_id: int = Field(foreign_key="topic.id", primary_key=True, index=True)
    topic_version: int
    score: float
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    spans: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    snippet: str = Field(default="", sa_type=Text)
    snippet_spans: list[list[int]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    matched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    # The text the match was made on: "feed" (title and the feed's text) or "page" (with the
    # body extracted from the article's page).
    text_source: str = Field(default="feed", max_length=8)


class Subscriber(SQLModel, table=True):
    """A person who receives digests."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(default="", sa_type=Text)
    timezone: str = Field(default="UTC", max_length=64)
    # Opt-in: a short "nothing new" e-mail for a period without any new story.
    notify_empty: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Frequency(StrEnum):
    """How often a subscription's digest goes out."""

    INSTANT = "instant"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class Subscription(SQLModel, table=True):
    """A subscriber's interest in one topic, and when they want to hear about it.

    ``send_time`` (local HH:MM) applies to daily and weekly subscriptions, ``weekday`` (0 is
    Monday) to weekly ones. ``unsubscribed_at`` is set by an unsubscribe: the row stays, so
    syncing subscriptions.yaml does not subscribe the person again behind their back.
    """

    __table_args__ = (UniqueConstraint("subscriber_id", "topic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    topic_id: int = Field(foreign_key="topic.id", index=True)
    frequency: Frequency = Field(default=Frequency.DAILY, sa_type=String(16))
    send_time: str = Field(default="08:00", max_length=5)
    weekday: int = 0
    unsubscribed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChannelKind(StrEnum):
    """How a channel is sent to: a signed webhook of our own, or any Apprise service."""

    WEBHOOK = "webhook"
    APPRISE = "apprise"


class Channel(SQLModel, table=True):
    """Somewhere besides e-mail that a subscriber's alerts go: a webhook or an Apprise URL.

    A channel follows ``topic_ids`` (empty: the subscriber's own active subscriptions), only
    the high-priority ones when ``priority`` is ``high``, on its own schedule (instant unless
    said otherwise), so a person can keep a daily e-mail while a chat gets urgent news at once.
    ``url`` and ``secret`` are credentials: they are never shown back, ``shown_url`` is.
    """

    __table_args__ = (UniqueConstraint("subscriber_id", "url_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    kind: ChannelKind = Field(sa_type=String(16))
    url: str = Field(sa_type=Text)
    # SHA-256 of the URL: the channel's identity per subscriber (URLs can be long).
    url_hash: str = Field(max_length=64)
    # The URL with its secrets masked, as lists and logs show it.
    shown_url: str = Field(sa_type=Text)
    # The webhook's signing secret (whsec_...); None for Apprise channels.
    secret: str | None = Field(default=None, sa_type=Text)
    name: str = Field(default="", sa_type=Text)
    topic_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority: str = Field(default="", max_length=16)
    frequency: Frequency = Field(default=Frequency.INSTANT, sa_type=String(16))
    send_time: str = Field(default="00:00", max_length=5)
    weekday: int = 0
    # A template of config/templates/ to render with instead of the built-in one ("": built-in).
    template: str = Field(default="", max_length=100)
    # Set when the endpoint said it is gone (410) or someone disabled it: nothing is sent.
    disabled_reason: str | None = Field(default=None, sa_type=Text)
    # Set when the channel was removed (from subscriptions.yaml, or by unsubscribe).
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One digest to one subscriber (by e-mail, or to one of their channels) for one period:
    the outbox row. A channel's period keys start with ``ch<id>/``, so the subscriber's
    uniqueness per period holds for each channel too."""

    __table_args__ = (
        UniqueConstraint("subscriber_id", "period_key"),
        UniqueConstraint("channel_id", "period_key"),
        Index("ix_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id")
    # None: the subscriber's e-mail.
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    period_key: str = Field(max_length=64)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=String(16))
    message_id: str = Field(sa_type=Text)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    # A worker's lease on the delivery while it sends it: another worker skips it until then.
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryItem(SQLModel, table=True):
    """An article in a delivery; unique per subscriber so nobody gets an article twice by
    e-mail, and per channel so no channel gets it twice. A channel's items have no
    subscriber (so e-mail never counts them as delivered) and a channel instead."""

    __table_args__ = (
        UniqueConstraint("subscriber_id", "article_id"),
        UniqueConstraint("channel_id", "article_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id")
    channel_id: int | None = Field(default=None, foreign_key="channel.id")
    article_id: int = Field(foreign_key="article.id")
    topic_id: int = Field(foreign_key="topic.id")


def table_names() -> list[str]:
    """Names of every table monitor owns, in creation order."""
    return [table.name for table in SQLModel.metadata.sorted_tables]


class Report(SQLModel, table=True):
    """The daily alert report of one local day, kept for review: data, HTML page and text.

    Building the same day again replaces the row (one row per day, whatever its time zone).
    """

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(unique=True)
    timezone: str = Field(max_length=64)
    generated_at: datetime = Field(sa_type=UTCDateTime)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    html: str = Field(default="", sa_type=Text)
    text: str = Field(default="", sa_type=Text)
    # What the reviewers are e-mailed: the subject, and HTML with table charts (no SVG).
    subject: str = Field(default="", sa_type=Text)
    email_html: str = Field(default="", sa_type=Text)


class AdminUser(SQLModel, table=True):
    """A person who may sign in to the web app; the password is kept as an argon2id hash."""

    __tablename__ = "admin_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True)
    password_hash: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AdminSession(SQLModel, table=True):
    """A signed-in session of the web app. The cookie carries a random token; only its SHA-256
    is kept here, so a copy of the database opens no session. Deleting the row ends the session
    everywhere (sign-out, a new password), whatever cookies were saved."""

    __tablename__ = "admin_session"

    token_hash: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(foreign_key="admin_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Idle expiry: web.session_lifetime after this; renewed at most once a minute.
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class LoginAttempt(SQLModel, table=True):
    """A failed sign-in, by name and client address: recent ones throttle further tries.

    Kept in the database (not in memory) so every web process sees the same count.
    """

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, index=True)
    address: str = Field(max_length=64, index=True)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ReviewState(StrEnum):
    """Where a reviewer left a matched article: new (nobody has looked), reviewed, flagged
    (needs someone's attention), dismissed (not relevant)."""

    NEW = "new"
    REVIEWED = "reviewed"
    FLAGGED = "flagged"
    DISMISSED = "dismissed"


class Review(SQLModel, table=True):
    """A reviewer's verdict on an article for one topic: its state, note, who and when.

    Keyed by (article, topic), not by the match: a retag that drops the match keeps the row,
    and the inbox shows the article as "no longer matches" with its history. No row: ``new``.
    """

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    topic_id: int = Field(foreign_key="topic.id", primary_key=True, index=True)
    state: ReviewState = Field(default=ReviewState.NEW, sa_type=String(16))
    note: str = Field(default="", sa_type=Text)
    updated_by: str = Field(default="", max_length=150)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # How many changes the row has had: a client can tell that someone else changed it since.
    changes: int = 0


class ReviewEvent(SQLModel, table=True):
    """One change of a review, kept for its history: the state and note before and after."""

    __tablename__ = "review_event"
    __table_args__ = (Index("ix_review_event_article_id_topic_id", "article_id", "topic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id")
    topic_id: int = Field(foreign_key="topic.id")
    previous_state: ReviewState = Field(sa_type=String(16))
    state: ReviewState = Field(sa_type=String(16))
    previous_note: str = Field(default="", sa_type=Text)
    note: str = Field(default="", sa_type=Text)
    changed_by: str = Field(default="", max_length=150)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
