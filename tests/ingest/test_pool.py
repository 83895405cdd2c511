"""The prepare pool: worker processes give what preparing in this process gives, in batches,
and a worker that dies costs only the document that killed it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from monitor.ingest.pool import PreparePool
from monitor.ingest.prepare import (
    FeedDocument,
    Prepared,
    PreparedFeed,
    TopicSet,
    Unreadable,
    prepare_batch,
    prepare_feed,
    topic_set,
)
from monitor.ingest.sketch import StoryRules
from monitor.models import Topic

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
RULES = StoryRules()
TOPICS = topic_set(
    [
        Topic(id=1, slug="interference", name="I", version=3, query='putin AND "kamala harris"'),
        Topic(id=2, slug="markets", name="M", version=1, query="stocks OR bonds"),
    ]
)
KILLER = b"<!-- kill the worker -->"


def document(name: str, *, feed_id: int = 1, body: bytes | None = None) -> FeedDocument:
    """A fixture feed as a fetched document."""
    return FeedDocument(
        feed_id=feed_id,
        url=f"http://127.0.0.1/{name}",
        body=(FEEDS / name).read_bytes() if body is None else body,
        content_type=None,
        feed_title="",
        feed_url=f"http://127.0.0.1/{name}",
    )


def dying_prepare(
    documents: Sequence[FeedDocument], topics: TopicSet, rules: StoryRules
) -> list[Prepared]:
    """prepare_batch, except that a document holding KILLER kills the worker process."""
    if any(KILLER in d.body for d in documents):
        os._exit(13)
    return prepare_batch(documents, topics, rules)


def comparable(prepared: Prepared) -> object:
    """A prepared document as plain values (signatures are arrays, which do not compare)."""
    if isinstance(prepared, Unreadable):
        return prepared
    sketches = [
        None if s is None else (s.signature.tolist(), list(s.bands)) for s in prepared.sketches
    ]
    return prepared.parsed, prepared.keys, sketches, prepared.hits


async def prepare_all(pool: PreparePool, documents: list[FeedDocument]) -> list[Prepared]:
    """Hand every document to the pool at once, as a poll does."""
    async with pool:
        return list(await asyncio.gather(*(pool.prepare(d, TOPICS, RULES) for d in documents)))


DOCUMENTS = [document("world.rss", feed_id=1), document("markets.atom", feed_id=2)] * 6


@pytest.mark.parametrize("workers", [0, 2])
def test_the_pool_prepares_as_this_process_does(workers: int) -> None:
    expected = [comparable(prepare_feed(d, TOPICS, RULES)) for d in DOCUMENTS]
    pool = PreparePool(workers, batch_documents=4)
    found = asyncio.run(prepare_all(pool, DOCUMENTS))
    assert [comparable(p) for p in found] == expected
    # The fixtures hold the seed story: the interference topic matched something.
    world = found[0]
    assert isinstance(world, PreparedFeed)
    assert any(hit.slug == "interference" for hits in world.hits.values() for hit in hits)
    # Twelve documents handed over at once travel in batches, not one by one.
    assert pool.batches < len(DOCUMENTS)


def test_a_document_that_is_not_a_feed_is_unreadable_and_the_others_are_prepared() -> None:
    documents = [document("world.rss"), document("x", body=b"<html><body>hi</body></html>")]
    found = asyncio.run(prepare_all(PreparePool(1), documents))
    assert isinstance(found[0], PreparedFeed)
    assert isinstance(found[1], Unreadable)
    assert "HTML page" in found[1].reason
    assert not found[1].internal


def test_a_document_that_kills_its_worker_costs_only_itself() -> None:
    killer = document("world.rss", feed_id=9, body=(FEEDS / "world.rss").read_bytes() + KILLER)
    documents = [document("world.rss"), killer, document("markets.atom", feed_id=2)]
    pool = PreparePool(2, batch_documents=8, prepare=dying_prepare)

    async def twice() -> tuple[list[Prepared], list[Prepared]]:
        async with pool:
            first = await asyncio.gather(*(pool.prepare(d, TOPICS, RULES) for d in documents))
            # The pool works again afterwards.
            again = await asyncio.gather(pool.prepare(documents[0], TOPICS, RULES))
        return list(first), list(again)

    first, again = asyncio.run(twice())
    assert isinstance(first[0], PreparedFeed)
    assert isinstance(first[2], PreparedFeed)
    assert isinstance(first[1], Unreadable)
    assert first[1].internal
    assert "died" in first[1].reason
    assert [comparable(p) for p in again] == [comparable(first[0])]


SLOW = b"<!-- take your time -->"


def slow_prepare(
    documents: Sequence[FeedDocument], topics: TopicSet, rules: StoryRules
) -> list[Prepared]:
    """prepare_batch, except that a document holding SLOW takes two seconds more."""
    if any(SLOW in d.body for d in documents):
        time.sleep(2)
    return prepare_batch(documents, topics, rules)


def test_a_slow_document_does_not_hold_the_others() -> None:
    slow = document("world.rss", feed_id=9, body=(FEEDS / "world.rss").read_bytes() + SLOW)
    documents = [slow] + [document("markets.atom", feed_id=n) for n in range(2, 8)]
    pool = PreparePool(2, batch_documents=1, prepare=slow_prepare)
    finished: list[int] = []

    async def run() -> None:
        async def one(d: FeedDocument) -> None:
            await pool.prepare(d, TOPICS, RULES)
            finished.append(d.feed_id)

        async with pool:
            await asyncio.gather(*(one(d) for d in documents))

    asyncio.run(run())
    # The slow document went first and finished last: the other worker took everything else.
    assert finished[-1] == 9
    assert sorted(finished[:-1]) == list(range(2, 8))
