"""Prepare fetched documents off the event loop: in worker processes, fed in batches.

Fetching is I/O and stays on the event loop; parsing, story signatures and tagging are CPU and
go to a process pool sized to the machine, so a poll keeps every core busy and a large feed
being parsed never holds the fetches. Documents waiting together go to a worker as one batch
(one round trip instead of one per feed). With ``workers=0`` the same work runs in a thread of
this process, which is what small installations and most tests want.

A worker that dies (a parser crash, the OOM killer) breaks the pool: it is started again, the
batch is retried one document at a time, and a document that kills a worker on its own is
reported unreadable, so one hostile feed cannot stop the service.

The other way round, a worker outlives nothing: each watches a pipe whose only writing end is
held by the polling process, and exits when it reads end-of-file, which is when that process
is gone, however it died (SIGKILL, the OOM killer). The fork server and the resource tracker
that multiprocessing starts beside the pool end by themselves once no worker holds their
pipes, so a killed poller leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, TypeVar

from monitor.ingest.prepare import FeedDocument, Prepared, TopicSet, Unreadable, prepare_batch
from monitor.ingest.sketch import StoryRules

log = logging.getLogger(__name__)
BATCH_DOCUMENTS = 8
BATCH_BYTES = 1_000_000
PrepareBatch = Callable[[Sequence[FeedDocument], TopicSet, StoryRules], list[Prepared]]
T = TypeVar("T")


def default_workers() -> int:
    """Worker processes for this machine: one per core the process may use, less one.

    The polling process is busy too (fetching, and writing every feed's articles), so it counts
    as one: on 2 cores a second worker made a cold poll of the corpus 10 % faster (5.1 s against
    5.6 s) and cost some 100 MB.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(slots=True)
class _Job:
    document: FeedDocument
    topics: TopicSet
    rules: StoryRules
    done: asyncio.Future[Prepared]

    def same_run(self, other: _Job) -> bool:
        return self.topics.fingerprint == other.topics.fingerprint and self.rules == other.rules


class PreparePool:
    """Prepares documents in ``workers`` processes (0: in a thread), batching what waits."""

    def __init__(
        self,
        workers: int,
        *,
        batch_documents: int = BATCH_DOCUMENTS,
        batch_bytes: int = BATCH_BYTES,
        prepare: PrepareBatch = prepare_batch,
    ) -> None:
        self.workers = workers
        # A module-level function: it travels to the worker processes by name.
        self._prepare = prepare
        # Batches and documents handed to the workers so far (for logs, tests and benchmarks).
        self.batches = 0
        self.documents = 0
        self._batch_documents = batch_documents
        self._batch_bytes = batch_bytes
        self._executor: Executor | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._dispatchers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> PreparePool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def prepare(
        self, document: FeedDocument, topics: TopicSet, rules: StoryRules
    ) -> Prepared:
        """Parse, sketch and tag one document; never raises for a bad document."""
        if self._queue is None:
            self._start()
        assert self._queue is not None
        done: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(document, topics, rules, done))
        return await done

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a module-level ``function(*args)`` in a worker process (a thread with no workers).

        Other stages' CPU work (article pages) shares the workers with feeds this way. A worker
        that dies on it raises BrokenProcessPool, after the pool was started again.
        """
        if self._queue is None:
            self._start()
        executor = self._executor
        if executor is None:
            return await asyncio.to_thread(function, *args)
        try:
            future = await asyncio.to_thread(executor.submit, _call_in_worker, function, *args)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._restart(executor)
            raise

    async def close(self) -> None:
        """Stop the dispatchers and the worker processes."""
        for task in self._dispatchers:
            task.cancel()
        for task in self._dispatchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dispatchers.clear()
        self._queue = None
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        if self.workers > 0:
            self._executor = _process_executor(self.workers)
        # Two batches per worker: one running, one waiting, so a worker never idles between.
        count = max(1, self.workers) * 2
        self._dispatchers = [asyncio.create_task(self._dispatch()) for _ in range(count)]

    async def _dispatch(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            size = len(batch[0].document.body)
            while (
                len(batch) < self._batch_documents
                and size < self._batch_bytes
                and not queue.empty()
            ):
                job = queue.get_nowait()
                if not job.same_run(batch[0]):
                    queue.put_nowait(job)
                    break
                batch.append(job)
                size += len(job.document.body)
            try:
                results = await self._run(batch)
            except Exception as exc:  # never leave a caller waiting
                log.exception("document preparation failed")
                results = [Unreadable(f"internal error: {type(exc).__name__}: {exc}", True)] * len(
                    batch
                )
            for job, result in zip(batch, results, strict=True):
                if not job.done.done():
                    job.done.set_result(result)

    async def _run(self, batch: list[_Job]) -> list[Prepared]:
        documents = [job.document for job in batch]
        topics, rules = batch[0].topics, batch[0].rules
        prepare = self._prepare
        self.batches += 1
        self.documents += len(documents)
        if self._executor is None:
            return await asyncio.to_thread(prepare, documents, topics, rules)
        executor = self._executor
        try:
            return await _submit(executor, prepare, documents, topics, rules)
        except BrokenProcessPool:
            self._restart(executor)
        results: list[Prepared] = []
        # Which document killed the worker? Each alone in the new pool tells.
        for document in documents:
            executor = self._executor
            try:
                found = await _submit(executor, prepare, [document], topics, rules)
                results.append(found[0])
            except BrokenProcessPool:
                self._restart(executor)
                log.error("a worker process died preparing feed_url=%s", document.feed_url)
                results.append(Unreadable("internal error: the parser process died on it", True))
        return results

    def _restart(self, broken: Executor | None) -> None:
        # Every batch in flight on a broken pool fails; only the first to notice replaces it.
        if broken is not self._executor:
            return
        self._executor = _process_executor(self.workers)
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)


async def _submit(
    executor: Executor,
    prepare: PrepareBatch,
    documents: Sequence[FeedDocument],
    topics: TopicSet,
    rules: StoryRules,
) -> list[Prepared]:
    # Submitted from a thread: a submit can start a worker process, which waits for the fork
    # server (seconds, the first time: it imports the parsers), and the loop must keep fetching.
    future = await asyncio.to_thread(
        executor.submit, _prepare_in_worker, prepare, documents, topics, rules
    )
    return await asyncio.wrap_future(future)


def _prepare_in_worker(
    prepare: PrepareBatch,
    documents: Sequence[FeedDocument],
    topics: TopicSet,
    rules: StoryRules,
) -> list[Prepared]:
    """Run ``prepare`` in a worker process, then give the memory it freed back to the system.

    A large document's tree and text take tens of MB for a moment; without the trim, glibc
    keeps the freed pages, and each worker stays as large as the largest feed it ever read.
    """
    try:
        return prepare(documents, topics, rules)
    finally:
        _trim_heap()


def _call_in_worker(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` in a worker process, then give the memory it freed back (as above)."""
    try:
        return function(*args)
    finally:
        _trim_heap()


@functools.cache
def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def _trim_heap() -> None:
    trim = _libc_trim()
    if trim is not None:
        trim(0)


def _process_executor(workers: int) -> ProcessPoolExecutor:
    # forkserver: fork is unsafe from a process with threads (ours has the event loop's and
    # the database's), and spawn would import everything again for each worker.
    context = multiprocessing.get_context("forkserver")
    # The language model too: loaded once there, its pages are shared by every worker.
    context.set_forkserver_preload(["monitor.ingest.prepare", "monitor.ingest.language_model"])
    return _WorkerPool(workers, context)


class _WorkerPool(ProcessPoolExecutor):
    """A process pool whose workers exit as soon as the process that started it is gone."""

    def __init__(self, workers: int, context: BaseContext) -> None:
        # The workers get the reading end only: the writing end stays here, so end-of-file on
        # the pipe means this process has closed it, or died.
        reader, writer = context.Pipe(duplex=False)
        super().__init__(
            max_workers=workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(reader,),
        )
        self._lifeline = (reader, writer)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the pool down, then close the lifeline: any worker still there exits."""
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        for end in self._lifeline:
            end.close()


def _exit_with_parent(lifeline: Connection) -> None:
    """In a worker process: exit at once when the parent's end of ``lifeline`` closes."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        # No cleanup: the parent that would read the results is gone.
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
