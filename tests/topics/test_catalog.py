"""topics.yaml: reading it (errors name the file and line), syncing it, and editing topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.errors import ConfigError, NotFoundError, UsageError
from monitor.models import Topic, TopicPriority
from monitor.topics.catalog import (
    TopicSpec,
    TopicSync,
    apply_changes,
    create_topic,
    read_topics_file,
    require_topic,
    sync_topics,
)
from monitor.topics.query import QuerySyntaxError

T0 = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
T3 = T0 + timedelta(hours=3)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


VALID = """\
topics:
  - slug: election-interference
    name: Election interference
    description: Foreign meddling
    priority: high
    query: >-
      ("election interference" OR meddl*)
      AND (russia* OR kremlin)
  - slug: central-banks
    name: Central banks
    enabled: false
    keywords: [central bank, "interest rate*", ECB]
"""


def test_read_topics_file(tmp_path: Path) -> None:
    specs = read_topics_file(write(tmp_path, VALID))

    assert [(s.slug, s.name, s.enabled, s.priority) for s in specs] == [
        ("election-interference", "Election interference", True, TopicPriority.HIGH),
        ("central-banks", "Central banks", False, TopicPriority.NORMAL),
    ]
    assert specs[0].query == '("election interference" OR meddl*) AND (russia* OR kremlin)'
    assert specs[0].keywords is None
    assert specs[0].effective_query == specs[0].query
    assert specs[0].description == "Foreign meddling"


def test_legacy_keywords_become_a_query_of_any_of_them(tmp_path: Path) -> None:
    [_, banks] = read_topics_file(write(tmp_path, VALID))

    assert banks.query is None
    assert banks.keywords == ["central bank", "interest rate*", "ECB"]
    # Phrases are quoted; single words and wildcards stand alone.
    assert banks.effective_query == '"central bank" OR "interest rate*" OR ECB'


def test_absent_topics_file_defines_none(tmp_path: Path) -> None:
    assert read_topics_file(tmp_path / "missing.yaml") == []


def test_empty_topics_file_defines_none(tmp_path: Path) -> None:
    assert read_topics_file(write(tmp_path, "")) == []


OK_TOPIC = "topics:\n  - slug: ok\n    name: Ok\n    query: fine\n"


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        pytest.param(
            OK_TOPIC + "  - slug: Bad_Slug\n    name: X\n    query: a\n",
            5,
            "topics[1].slug: use lower-case",
            id="bad-slug",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n",
            5,
            "topics[1]: give either query or keywords",
            id="neither-query-nor-keywords",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: a\n    keywords: [b]\n",
            5,
            "topics[1]: give either query or keywords",
            id="both-query-and-keywords",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    keywords: []\n",
            4,
            "topics[0].keywords",
            id="empty-keywords",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: '(russia* OR kremlin'\n",
            7,
            "topics[1].query: unbalanced parenthesis at column 1",
            id="unbalanced-open",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: 'russia* OR kremlin)'\n",
            7,
            "topics[1].query: unbalanced parenthesis at column 19",
            id="unbalanced-close",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    query: >-\n"
            "      russia*\n      AND titel:kremlin\n",
            4,
            'topics[0].query: unknown field "titel" (did you mean "title"?) at column 13',
            id="unknown-field-folded",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: NEAR/5 election\n",
            7,
            "NEAR needs a term on both sides at column 1",
            id="near-one-side",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: NOT election\n",
            7,
            "would match articles with none of its words",
            id="always-true",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: two\n    name: Two\n    query: ''\n",
            7,
            "empty query",
            id="empty-query",
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
            OK_TOPIC + "    priority: urgent\n",
            5,
            "topics[0].priority",
            id="bad-priority",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n    colour: red\n    query: a\n",
            4,
            "topics[0].colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            OK_TOPIC + "  - slug: other\n    name: Other\n    query: b\n"
            "  - slug: ok\n    name: Again\n    query: c\n",
            8,
            "'ok' is defined twice",
            id="duplicate-slug",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok: really\n    query: a\n",
            3,
            "not valid YAML",
            id="invalid-yaml",
        ),
        pytest.param(
            "topics:\n  - slug: ok\n    name: Ok\n\tquery: a\n",
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


# --- syncing -------------------------------------------------------------------------------


def spec(slug: str, query: str, **fields: Any) -> TopicSpec:
    return TopicSpec(slug=slug, name=fields.pop("name", slug.title()), query=query, **fields)


def keywords_spec(slug: str, *keywords: str) -> TopicSpec:
    return TopicSpec(slug=slug, name=slug.title(), keywords=list(keywords))


def sync(engine: Engine, specs: list[TopicSpec], now: datetime = T0) -> TopicSync:
    with Session(engine) as session, session.begin():
        return sync_topics(session, specs, now=now)


def topics(engine: Engine) -> dict[str, Topic]:
    with Session(engine) as session:
        return {topic.slug: topic for topic in session.exec(select(Topic)).all()}


def edit(engine: Engine, slug: str, now: datetime = T1, **changes: Any) -> bool:
    """Change a topic as ``monitor topics edit`` does."""
    with Session(engine) as session, session.begin():
        topic = require_topic(session, slug)
        changed = apply_changes(topic, now=now, **changes)
        session.add(topic)
        return changed


def test_sync_adds_topics(engine: Engine) -> None:
    result = sync(
        engine,
        [
            spec("banks", '"central bank"', priority=TopicPriority.HIGH, description="Rates"),
            keywords_spec("votes", "election", "polling day"),
        ],
    )

    assert result == TopicSync(added=["banks", "votes"], updated=[], unchanged=[])
    stored = topics(engine)
    banks = stored["banks"]
    assert (banks.query, banks.name, banks.description) == ('"central bank"', "Banks", "Rates")
    assert (banks.priority, banks.version, banks.enabled) == (TopicPriority.HIGH, 1, True)
    assert banks.created_at == T0
    assert stored["votes"].query == 'election OR "polling day"'
    # New topics have never tagged stored articles: a retag of the window is due.
    assert (banks.tagged_version, stored["votes"].tagged_version) == (0, 0)


def test_sync_is_idempotent(engine: Engine) -> None:
    specs = [spec("banks", '"central bank"'), keywords_spec("votes", "election")]
    sync(engine, specs)

    again = sync(engine, specs, now=T1)

    assert again == TopicSync(added=[], updated=[], unchanged=["banks", "votes"])
    stored = topics(engine)
    assert len(stored) == 2
    assert stored["banks"].version == 1
    assert stored["banks"].updated_at == T0


@pytest.mark.parametrize(
    "changed",
    [
        spec("banks", '"central bank" OR "interest rate*"'),
        spec("banks", '"central banks"'),
        spec("banks", "title:(central NEAR/2 bank)"),
        keywords_spec("banks", "central bank", "ECB"),
    ],
    ids=["or", "phrase", "near", "to-keywords"],
)
def test_sync_bumps_version_when_the_query_changes(engine: Engine, changed: TopicSpec) -> None:
    sync(engine, [spec("banks", '"central bank"')])

    result = sync(engine, [changed], now=T1)

    assert result.updated == ["banks"]
    stored = topics(engine)["banks"]
    assert stored.version == 2
    assert stored.query == changed.effective_query
    assert stored.updated_at == T1


def test_keywords_written_as_the_same_query_change_nothing(engine: Engine) -> None:
    sync(engine, [keywords_spec("votes", "election", "polling day")])

    result = sync(engine, [spec("votes", 'election OR "polling day"', name="Votes")], now=T1)

    assert result.unchanged == ["votes"]
    assert topics(engine)["votes"].version == 1


@pytest.mark.parametrize(
    ("changed", "field", "value"),
    [
        (spec("banks", '"central bank"', name="Central banks"), "name", "Central banks"),
        (spec("banks", '"central bank"', enabled=False), "enabled", False),
        (spec("banks", '"central bank"', priority="high"), "priority", TopicPriority.HIGH),
        (spec("banks", '"central bank"', description="Rates"), "description", "Rates"),
    ],
    ids=["name", "enabled", "priority", "description"],
)
def test_sync_updates_other_fields_without_version_bump(
    engine: Engine, changed: TopicSpec, field: str, value: object
) -> None:
    sync(engine, [spec("banks", '"central bank"')])

    result = sync(engine, [changed], now=T1)

    assert result.updated == ["banks"]
    stored = topics(engine)["banks"]
    assert getattr(stored, field) == value
    assert stored.version == 1
    assert stored.updated_at == T1


def test_sync_leaves_topics_absent_from_the_file_alone(engine: Engine) -> None:
    sync(engine, [spec("banks", '"central bank"'), spec("votes", "election")])

    result = sync(engine, [spec("banks", '"central bank"')], now=T1)

    assert result == TopicSync(added=[], updated=[], unchanged=["banks"])
    votes = topics(engine)["votes"]
    assert (votes.enabled, votes.query, votes.version) == (True, "election", 1)


def test_cli_edit_survives_a_resync_of_the_unchanged_file(engine: Engine) -> None:
    file_entry = [spec("banks", '"central bank"')]
    sync(engine, file_entry)
    assert edit(engine, "banks", query='"central bank" AND rate*', name="Rates")

    result = sync(engine, file_entry, now=T2)

    assert result.unchanged == ["banks"]
    stored = topics(engine)["banks"]
    assert (stored.query, stored.name, stored.version) == ('"central bank" AND rate*', "Rates", 2)
    assert stored.updated_at == T1


@pytest.mark.parametrize(
    ("new_entry", "query", "name", "version"),
    [
        # The file's query is back in force: another query change, another version.
        (
            spec("banks", '"central bank"', name="Central banks"),
            '"central bank"',
            "Central banks",
            3,
        ),
        (spec("banks", "ecb OR fed"), "ecb OR fed", "Banks", 3),
        # The file now says what the edit said: the query is the same, so no new version.
        (spec("banks", '"central bank" AND rate*'), '"central bank" AND rate*', "Banks", 2),
    ],
    ids=["name-changed", "query-changed", "query-now-equal"],
)
def test_cli_edit_is_replaced_when_the_file_entry_changes(
    engine: Engine, new_entry: TopicSpec, query: str, name: str, version: int
) -> None:
    sync(engine, [spec("banks", '"central bank"')])
    edit(engine, "banks", query='"central bank" AND rate*', name="Rates")

    result = sync(engine, [new_entry], now=T2)

    assert result.updated == ["banks"]
    stored = topics(engine)["banks"]
    assert (stored.query, stored.name, stored.version) == (query, name, version)
    assert stored.updated_at == T2
    # And from then on the file entry is the one last applied.
    assert sync(engine, [new_entry], now=T3).unchanged == ["banks"]


@pytest.mark.parametrize(
    ("changes", "changed", "version"),
    [
        ({"query": "ecb OR fed"}, True, 2),
        ({"query": '"central bank"'}, False, 1),
        ({"query": '  "Central  BANK" '}, False, 1),
        ({"name": "Central banks"}, True, 1),
        ({"enabled": False}, True, 1),
        ({"priority": TopicPriority.HIGH}, True, 1),
        ({"query": None, "name": None}, False, 1),
    ],
    ids=["query", "same-query", "same-meaning", "name", "disable", "priority", "nothing"],
)
def test_apply_changes_bumps_the_version_only_for_a_new_query(
    engine: Engine, changes: dict[str, Any], changed: bool, version: int
) -> None:
    sync(engine, [spec("banks", '"central bank"')])

    assert edit(engine, "banks", **changes) is changed

    stored = topics(engine)["banks"]
    assert stored.version == version
    assert stored.updated_at == (T1 if changed else T0)


def test_apply_changes_refuses_a_bad_query_and_changes_nothing(engine: Engine) -> None:
    sync(engine, [spec("banks", '"central bank"')])

    with pytest.raises(QuerySyntaxError, match="unbalanced parenthesis at column 11"):
        edit(engine, "banks", query="ecb OR fed)")

    stored = topics(engine)["banks"]
    assert (stored.query, stored.version) == ('"central bank"', 1)


def test_create_topic(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        create_topic(
            session, slug="ecb", name="", query="  ecb OR lagarde  ",
            priority=TopicPriority.HIGH, now=T0,
        )  # fmt: skip

    stored = topics(engine)["ecb"]
    assert (stored.name, stored.query, stored.priority) == ("ecb", "ecb OR lagarde", "high")
    assert (stored.version, stored.tagged_version, stored.source_hash) == (1, 0, None)


@pytest.mark.parametrize(
    ("slug", "query", "error", "message"),
    [
        ("Bad Slug", "ecb", UsageError, "bad topic slug 'Bad Slug'"),
        ("ecb", "(ecb", QuerySyntaxError, "unbalanced parenthesis at column 1"),
        ("banks", "ecb", UsageError, "topic 'banks' exists already"),
    ],
    ids=["slug", "query", "exists"],
)
def test_create_topic_validates_first(
    engine: Engine, slug: str, query: str, error: type[Exception], message: str
) -> None:
    sync(engine, [spec("banks", '"central bank"')])

    with Session(engine) as session, session.begin(), pytest.raises(error, match=message):
        create_topic(session, slug=slug, name="", query=query, now=T1)

    assert sorted(topics(engine)) == ["banks"]


def test_require_topic_names_the_missing_slug(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(NotFoundError, match="no topic 'nope'"):
        require_topic(session, "nope")
