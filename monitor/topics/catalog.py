"""Topic definitions: ``topics.yaml``, keeping the topic table in step with it, and edits."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, select

from monitor.configfile import read_yaml_config
from monitor.errors import NotFoundError, UsageError
from monitor.models import Topic, TopicPriority
from monitor.topics.names import names_query
from monitor.topics.query import QuerySyntaxError, keywords_query, parse_query

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
# Validation context key: the slugs seen so far in one file, so a repeat is reported at its line.
_SEEN_SLUGS = "seen_slugs"


def check_slug(slug: str) -> str:
    """``slug`` if it is lower-case letters, digits and hyphens."""
    if not _SLUG.match(slug):
        raise UsageError(
            f"bad topic slug {slug!r}: use lower-case letters, digits and hyphens, "
            "as election-interference"
        )
    return slug


def check_query(query: str) -> str:
    """``query`` stripped, if it parses; raise QuerySyntaxError otherwise."""
    parse_query(query)
    return query.strip()


def _valid_query(query: str) -> str:
    try:
        return check_query(query)
    except QuerySyntaxError as exc:
        raise ValueError(str(exc)) from None


def _valid_keyword(keyword: str) -> str:
    _valid_query(keywords_query([keyword]))
    return keyword.strip()


def _valid_name(name: str) -> str:
    if not name.split():
        raise ValueError("a name needs letters")
    _valid_query(names_query([name]))
    return " ".join(name.split())


class TopicSpec(BaseModel):
    """One topic as written in ``topics.yaml``: a ``query``, ``queries`` (one per language), or a
    list of ``keywords``; and, beside any of them or alone, a list of ``names``."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    name: str = Field(min_length=1)
    description: str = ""
    query: Annotated[str, AfterValidator(_valid_query)] | None = None
    # Checked one by one, so an error's location (and so its line) is the bad keyword's own.
    keywords: list[Annotated[str, AfterValidator(_valid_keyword)]] | None = Field(
        default=None, min_length=1
    )
    # Several queries, keyed by the language each is written in (en, ru, uk, ...): the topic
    # matches when any of them does. The key documents the query; it does not restrict it.
    queries: dict[str, Annotated[str, AfterValidator(_valid_query)]] | None = Field(
        default=None, min_length=1
    )
    # People or places in any spelling: each name, and for a Cyrillic one its forms and Latin
    # transliterations (monitor.topics.names).
    names: list[Annotated[str, AfterValidator(_valid_name)]] | None = Field(
        default=None, min_length=1
    )
    priority: TopicPriority = TopicPriority.NORMAL
    enabled: bool = True

    @field_validator("slug")
    @classmethod
    def _check_slug(cls, slug: str, info: ValidationInfo) -> str:
        try:
            check_slug(slug)
        except UsageError:
            raise ValueError(
                "use lower-case letters, digits and hyphens, as election-interference"
            ) from None
        seen = (info.context or {}).get(_SEEN_SLUGS)
        if seen is not None:
            if slug in seen:
                raise ValueError(f"topic {slug!r} is defined twice")
            seen.add(slug)
        return slug

    @model_validator(mode="after")
    def _query_or_keywords(self) -> TopicSpec:
        given = [self.query, self.queries, self.keywords]
        count = sum(value is not None for value in given)
        if count > 1 or (count == 0 and self.names is None):
            raise ValueError(
                "give either query or keywords (a list, matched if any occurs) or queries (one "
                "per language); names (a list) may stand beside any of them, or alone"
            )
        return self

    @property
    def effective_query(self) -> str:
        """The query the topic stands for: its query, queries, keywords or names, ORed."""
        parts: list[str] = []
        if self.query is not None:
            parts.append(self.query)
        if self.queries is not None:
            parts.extend(self.queries.values())
        if self.keywords is not None:
            parts.append(keywords_query(self.keywords))
        if self.names is not None:
            parts.append(names_query(self.names))
        if len(parts) == 1:
            return parts[0]
        return " OR ".join(f"({part})" for part in parts)

    def source_hash(self) -> str:
        """A fingerprint of this entry, to notice when the file entry itself changed."""
        fields = [self.name, self.description, self.effective_query, self.priority, self.enabled]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class TopicsFile(BaseModel):
    """The whole of ``topics.yaml``."""

    model_config = ConfigDict(extra="forbid")

    topics: list[TopicSpec] = Field(default_factory=list)


def read_topics_file(path: Path) -> list[TopicSpec]:
    """The topics defined in ``path``; an absent file defines none."""
    if not path.exists():
        return []
    return read_yaml_config(path, TopicsFile, context={_SEEN_SLUGS: set()}).topics


@dataclass(frozen=True, slots=True)
class TopicSync:
    """What syncing a topics file changed."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]


def sync_topics(session: Session, specs: list[TopicSpec], *, now: datetime) -> TopicSync:
    """Create the topics in ``specs`` and apply the entries that changed since last time.

    An entry is applied only when it differs from the one applied before, so an edit made with
    ``monitor topics edit`` stays until the file entry itself changes. Topics missing from
    ``specs`` are left alone: they may have been created elsewhere.
    """
    existing = {topic.slug: topic for topic in session.exec(select(Topic)).all()}
    added, updated, unchanged = [], [], []
    for spec in specs:
        topic = existing.get(spec.slug)
        fingerprint = spec.source_hash()
        if topic is None:
            topic = Topic(slug=spec.slug, name=spec.name, query=spec.effective_query,
                          created_at=now, updated_at=now)  # fmt: skip
            added.append(spec.slug)
        elif topic.source_hash == fingerprint:
            unchanged.append(spec.slug)
            continue
        else:
            updated.append(spec.slug)
        apply_changes(
            topic, name=spec.name, description=spec.description, query=spec.effective_query,
            priority=spec.priority, enabled=spec.enabled, now=now,
        )  # fmt: skip
        topic.source_hash = fingerprint
        session.add(topic)
    session.flush()
    return TopicSync(added, updated, unchanged)


def apply_changes(topic: Topic, *, now: datetime, **changes: Any) -> bool:
    """Set the given fields; a new query bumps the version (and so a retag). True if changed."""
    changed = False
    for name, value in changes.items():
        if value is None or getattr(topic, name) == value:
            continue
        if name == "query":
            # Only a different meaning is a new version, not new spacing or capitals.
            if parse_query(value) == parse_query(topic.query):
                topic.query = value
                continue
            if topic.id is not None:
                topic.version += 1
        setattr(topic, name, value)
        changed = True
    if changed:
        topic.updated_at = now
    return changed


def create_topic(
    session: Session,
    *,
    slug: str,
    name: str,
    query: str,
    description: str = "",
    priority: TopicPriority = TopicPriority.NORMAL,
    now: datetime,
) -> Topic:
    """Add a topic after checking its slug and query; it is retagged over the recent window."""
    check_slug(slug)
    check_query(query)
    if get_topic(session, slug) is not None:
        raise UsageError(f"topic {slug!r} exists already (use `monitor topics edit`)")
    topic = Topic(slug=slug, name=name or slug, description=description, query=query.strip(),
                  priority=priority, created_at=now, updated_at=now)  # fmt: skip
    session.add(topic)
    session.flush()
    return topic


def list_topics(session: Session) -> list[Topic]:
    """Every topic, by slug."""
    return list(session.exec(select(Topic).order_by(col(Topic.slug))).all())


def get_topic(session: Session, slug: str) -> Topic | None:
    """The topic with ``slug``, if any."""
    return session.exec(select(Topic).where(Topic.slug == slug)).first()


def require_topic(session: Session, slug: str) -> Topic:
    """The topic with ``slug``; raise NotFoundError naming it otherwise."""
    topic = get_topic(session, slug)
    if topic is None:
        raise NotFoundError(f"no topic {slug!r} (see `monitor topics list`)")
    return topic
