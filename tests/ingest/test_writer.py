"""The batch writer: many feeds' writes share transactions, and a failing write fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.ingest.writer import BatchWriter
from monitor.models import Feed


def add_feed(url: str, *, fail: bool = False) -> Callable[[Session], str]:
    """A write job adding one feed; with ``fail``, it raises after its insert."""

    def job(session: Session) -> str:
        session.add(Feed(url=url))
        session.flush()
        if fail:
            raise ValueError(f"cannot add {url}")
        return url

    return job


async def write_all(
    writer: BatchWriter, jobs: list[Callable[[Session], str]]
) -> list[str | BaseException]:
    """Hand every job over at once, as concurrent refreshes do; results or exceptions."""
    async with writer:
        return list(
            await asyncio.gather(*(writer.write(job) for job in jobs), return_exceptions=True)
        )


def stored_urls(engine: Engine) -> set[str]:
    """The URLs of the stored feeds."""
    with Session(engine) as session:
        return set(session.exec(select(Feed.url)).all())


def test_writes_waiting_together_share_a_transaction(engine: Engine) -> None:
    urls = [f"http://127.0.0.1/{n}.xml" for n in range(20)]
    writer = BatchWriter(engine, batch=8)
    results = asyncio.run(write_all(writer, [add_feed(url) for url in urls]))
    assert results == urls
    assert stored_urls(engine) == set(urls)
    # 20 writes handed over at once: one transaction per batch of at most 8, not 20.
    assert 3 <= writer.transactions < len(urls)


@pytest.mark.parametrize("batch", [1, 8])
def test_a_failing_write_rolls_back_alone(engine: Engine, batch: int) -> None:
    jobs = [
        add_feed("http://127.0.0.1/a.xml"),
        add_feed("http://127.0.0.1/bad.xml", fail=True),
        add_feed("http://127.0.0.1/c.xml"),
    ]
    results = asyncio.run(write_all(BatchWriter(engine, batch=batch), jobs))
    assert results[0] == "http://127.0.0.1/a.xml"
    assert isinstance(results[1], ValueError)
    assert "bad.xml" in str(results[1])
    assert results[2] == "http://127.0.0.1/c.xml"
    assert stored_urls(engine) == {"http://127.0.0.1/a.xml", "http://127.0.0.1/c.xml"}


def test_a_write_that_breaks_a_constraint_fails_alone(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(Feed(url="http://127.0.0.1/taken.xml"))
    jobs = [add_feed("http://127.0.0.1/new.xml"), add_feed("http://127.0.0.1/taken.xml")]
    results = asyncio.run(write_all(BatchWriter(engine), jobs))
    assert results[0] == "http://127.0.0.1/new.xml"
    assert isinstance(results[1], Exception)
    assert stored_urls(engine) == {"http://127.0.0.1/new.xml", "http://127.0.0.1/taken.xml"}
