"""topics.yaml: reading it (errors name the file and line) and syncing it into the topic table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.errors import ConfigError
from monitor.models import Topic
from monitor.topics.catalog import TopicSpec, TopicSync, read_topics_file, sync_topics

T0 = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


VALID = """\
topics:
  - slug: election-interference
    name: Election interference
    description: Foreign meddling
    keywords:
      - election interference
      - "meddl* in the election"
  - slug: central-banks
    name: Central banks
    enabled: false
    keywords: [central bank, "interest rate*"]
"""


def test_read_topics_file(tmp_path: Path) -> None:
    specs = read_topics_file(write(tmp_path, VALID))

    assert [(s.slug, s.name, s.enabled) for s in specs] == [
        ("election-interference", "Election interference", True),
        ("central-banks", "Central banks", False),
    ]
    assert specs[0].keywords == ["election interference", "meddl* in the election"]
    assert specs[0].description == "Foreign meddling"
    assert specs[1].keywords == ["central bank", "interest rate*"]


def test_absent_topics_file_defines_none(tmp_path: Path) -> None:
    assert read_topics_file(tmp_path / "missing.yaml") == []


def test_empty_topics_file_defines_none(tmp_path: Path) -> None:
    assert read_topics_file(write(tmp_path, "")) == []


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords: [a]\n"
            "  - slug: Bad_Slug\n    name: X\n    keywords: [a]\n",
            5,
            "topics[1].slug: use lower-case",
            id="bad-slug",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords: [a]\n"
            "  - slug: two\n    name: Two\n",
            5,
            "topics[1].keywords: Field required",
            id="missing-keywords",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords: []\n",
            4,
            "topics[0].keywords",
            id="empty-keywords",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords:\n"
            "      - fine\n      - also fine\n      - el*ection\n",
            7,
            "may only end a word",
            id="bad-keyword",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords:\n      - fine\n      - ab*\n",
            6,
            "at least 3 letters",
            id="short-wildcard",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    colour: red\n    keywords: [a]\n",
            4,
            "topics[0].colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords: [a]\n"
            "  - slug: other\n    name: Other\n    keywords: [b]\n"
            "  - slug: ok\n    name: Again\n    keywords: [c]\n",
            8,
            "'ok' is defined twice",
            id="duplicate-slug",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok: really\n    keywords: [a]\n",
            3,
            "not valid YAML",
            id="invalid-yaml",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n\tkeywords: [a]\n",
            4,
            "not valid YAML",
            id="tab-indent",
        ),
    ],
)
def test_topics_file_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, complaint: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        read_topics_file(path)

    assert caught.value.source == str(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert complaint in str(caught.value)


def spec(slug: str, *keywords: str, name: str = "", enabled: bool = True) -> TopicSpec:
    return TopicSpec(slug=slug, name=name or slug.title(), keywords=list(keywords), enabled=enabled)


def sync(engine: Engine, specs: list[TopicSpec], now: datetime = T0) -> TopicSync:
    with Session(engine) as session, session.begin():
        return sync_topics(session, specs, now=now)


def topics(engine: Engine) -> dict[str, Topic]:
    with Session(engine) as session:
        return {topic.slug: topic for topic in session.exec(select(Topic)).all()}


def test_sync_adds_topics(engine: Engine) -> None:
    result = sync(engine, [spec("banks", "central bank"), spec("votes", "election")])

    assert result == TopicSync(added=["banks", "votes"], updated=[], unchanged=[])
    stored = topics(engine)
    assert stored["banks"].keywords == ["central bank"]
    assert stored["banks"].name == "Banks"
    assert stored["banks"].version == 1
    assert stored["banks"].enabled is True
    assert stored["banks"].created_at == T0


def test_sync_is_idempotent(engine: Engine) -> None:
    specs = [spec("banks", "central bank"), spec("votes", "election")]
    sync(engine, specs)

    again = sync(engine, specs, now=T1)

    assert again == TopicSync(added=[], updated=[], unchanged=["banks", "votes"])
    stored = topics(engine)
    assert len(stored) == 2
    assert stored["banks"].version == 1
    assert stored["banks"].updated_at == T0


@pytest.mark.parametrize(
    "keywords",
    [
        ["central bank", "interest rate*"],
        ["central banks"],
        ["interest rate*"],
    ],
)
def test_sync_bumps_version_when_keywords_change(engine: Engine, keywords: list[str]) -> None:
    sync(engine, [spec("banks", "central bank")])

    result = sync(engine, [spec("banks", *keywords)], now=T1)

    assert result.updated == ["banks"]
    stored = topics(engine)["banks"]
    assert stored.version == 2
    assert stored.keywords == keywords
    assert stored.updated_at == T1


@pytest.mark.parametrize(
    ("changed", "field", "value"),
    [
        (spec("banks", "central bank", name="Central banks"), "name", "Central banks"),
        (spec("banks", "central bank", enabled=False), "enabled", False),
    ],
)
def test_sync_updates_name_and_enabled_without_version_bump(
    engine: Engine, changed: TopicSpec, field: str, value: object
) -> None:
    sync(engine, [spec("banks", "central bank")])

    result = sync(engine, [changed], now=T1)

    assert result.updated == ["banks"]
    stored = topics(engine)["banks"]
    assert getattr(stored, field) == value
    assert stored.version == 1
    assert stored.updated_at == T1


def test_sync_leaves_topics_absent_from_the_file_alone(engine: Engine) -> None:
    sync(engine, [spec("banks", "central bank"), spec("votes", "election")])

    result = sync(engine, [spec("banks", "central bank")], now=T1)

    assert result == TopicSync(added=[], updated=[], unchanged=["banks"])
    votes = topics(engine)["votes"]
    assert votes.enabled is True
    assert votes.keywords == ["election"]
    assert votes.version == 1
