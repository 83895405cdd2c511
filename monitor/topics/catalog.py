"""Topic definitions: read ``topics.yaml``, keep the topic table in step with it, list topics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from sqlmodel import Session, col, select

from monitor.configfile import read_yaml_config
from monitor.models import Topic
from monitor.topics.matcher import parse_keyword

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
# Validation context key: the slugs seen so far in one file, so a repeat is reported at its line.
_SEEN_SLUGS = "seen_slugs"


def _check_keyword(keyword: str) -> str:
    return parse_keyword(keyword).text


class TopicSpec(BaseModel):
    """One topic as written in ``topics.yaml``."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    name: str = Field(min_length=1)
    description: str = ""
    # Checked one by one, so an error's location (and so its line) is the bad keyword's own.
    keywords: list[Annotated[str, AfterValidator(_check_keyword)]] = Field(min_length=1)
    enabled: bool = True

    @field_validator("slug")
    @classmethod
    def _check_slug(cls, slug: str, info: ValidationInfo) -> str:
        if not _SLUG.match(slug):
            raise ValueError("use lower-case letters, digits and hyphens, as election-interference")
        seen = (info.context or {}).get(_SEEN_SLUGS)
        if seen is not None:
            if slug in seen:
                raise ValueError(f"topic {slug!r} is defined twice")
            seen.add(slug)
        return slug


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
    """Create or update the topics in ``specs``; a changed keyword list bumps the version.

    Topics missing from ``specs`` are left alone: they may have been created elsewhere.
    """
    existing = {topic.slug: topic for topic in session.exec(select(Topic)).all()}
    added, updated, unchanged = [], [], []
    for spec in specs:
        topic = existing.get(spec.slug)
        if topic is None:
            session.add(Topic(**spec.model_dump(), created_at=now, updated_at=now))
            added.append(spec.slug)
            continue
        changed = _apply(topic, spec)
        if changed:
            if topic.keywords != spec.keywords:
                topic.version += 1
            topic.keywords = list(spec.keywords)
            topic.updated_at = now
            session.add(topic)
            updated.append(spec.slug)
        else:
            unchanged.append(spec.slug)
    session.flush()
    return TopicSync(added, updated, unchanged)


def _apply(topic: Topic, spec: TopicSpec) -> bool:
    changed = topic.keywords != spec.keywords
    for name in ("name", "description", "enabled"):
        if getattr(topic, name) != getattr(spec, name):
            setattr(topic, name, getattr(spec, name))
            changed = True
    return changed


def list_topics(session: Session) -> list[Topic]:
    """Every topic, by slug."""
    return list(session.exec(select(Topic).order_by(col(Topic.slug))).all())


def get_topic(session: Session, slug: str) -> Topic | None:
    """The topic with ``slug``, if any."""
    return session.exec(select(Topic).where(Topic.slug == slug)).first()
