"""Batched database writes: what many feeds' refreshes write, in one transaction.

A poll records something for every feed it checks (new articles, a 304, a failure). One
transaction per feed costs a commit each (an fsync on SQLite), which dominates a warm poll.
Writes waiting together run in one transaction instead, each inside its own SAVEPOINT: a write
that fails rolls back alone and its caller gets the exception, the others still commit. When the
commit itself fails, each write is tried again in a transaction of its own, so one bad write
never costs the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.failpoints import failpoint

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH_WRITES = 64


@dataclass(slots=True)
class _Write:
    job: Callable[[Session], Any]
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class BatchWriter:
    """Runs write jobs (functions of a session) in shared transactions, one SAVEPOINT each."""

    def __init__(self, engine: Engine, *, batch: int = BATCH_WRITES) -> None:
        self.engine = engine
        self._batch = batch
        self._queue: asyncio.Queue[_Write] | None = None
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0

    async def __aenter__(self) -> BatchWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def write(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in a transaction shared with other waiting writes; its result or error."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._drain(self._queue))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Write(job, done))
        return cast(T, await done)

    async def close(self) -> None:
        """Stop the writer task (writes already handed over are finished by their callers)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._queue = None

    async def _drain(self, queue: asyncio.Queue[_Write]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                outcomes = await asyncio.to_thread(self._write_batch, [w.job for w in batch])
            except Exception as exc:  # the writer must outlive any one batch
                outcomes = [_Outcome(error=exc)] * len(batch)
            for write, outcome in zip(batch, outcomes, strict=True):
                if write.done.done():
                    continue
                if outcome.error is not None:
                    write.done.set_exception(outcome.error)
                else:
                    write.done.set_result(outcome.value)

    def _write_batch(self, jobs: list[Callable[[Session], Any]]) -> list[_Outcome]:
        if len(jobs) == 1:
            return [self._write_alone(jobs[0])]
        try:
            outcomes: list[_Outcome] = []
            with Session(self.engine) as session, session.begin():
                for job in jobs:
                    try:
                        with session.begin_nested():
                            outcomes.append(_Outcome(job(session)))
                    except Exception as exc:
                        outcomes.append(_Outcome(error=exc))
                failpoint("before-write-commit")
            self.transactions += 1
            return outcomes
        except Exception:
            log.warning("a batch of %d writes failed; writing each alone", len(jobs), exc_info=True)
            return [self._write_alone(job) for job in jobs]

    def _write_alone(self, job: Callable[[Session], Any]) -> _Outcome:
        try:
            with Session(self.engine) as session, session.begin():
                value = job(session)
                failpoint("before-write-commit")
            self.transactions += 1
            return _Outcome(value)
        except Exception as exc:
            return _Outcome(error=exc)
