"""Per-host politeness one process shares between feed polls and article pages.

Every request to a host, feed or page, takes one of that host's ``per_host`` slots, so feeds
and pages together never hold more than ``fetch.per_host`` connections to it. Page requests
also keep to a pace per host (``pages.per_host_interval`` between their starts), and a host
that answered 429 or 503 with Retry-After gets no page request before that time. Each host
waits on its own: a site with hundreds of pages due never delays another site's pages or any
feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

# A page waits at most this long for its host's turn; a host paused for longer (Retry-After)
# has its pages put back in the queue for later instead.
MAX_PAGE_WAIT = 60.0


class HostPausedError(Exception):
    """The host asked for a pause longer than a page may wait for; ``seconds`` of it remain."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(f"{host} asked us to wait {seconds:.0f} s")
        self.host = host
        self.seconds = seconds


class HostLimits:
    """Slots per host (feeds and pages) and the pace of page requests per host."""

    def __init__(
        self,
        per_host: int,
        *,
        page_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_host = per_host
        self.page_interval = page_interval
        self._clock = clock
        # Shared with the feed refresher (RefreshContext.host_gates), so both count the same.
        self.gates: dict[str, asyncio.Semaphore] = {}
        self._turns: dict[str, asyncio.Lock] = {}
        self._next_page: dict[str, float] = {}

    def gate(self, host: str) -> asyncio.Semaphore:
        """The host's slots."""
        return self.gates.setdefault(host, asyncio.Semaphore(self.per_host))

    def pause(self, host: str, seconds: float) -> None:
        """No page request to ``host`` for ``seconds`` (the server's Retry-After)."""
        until = self._clock() + seconds
        self._next_page[host] = max(self._next_page.get(host, 0.0), until)

    def paused_hosts(self) -> set[str]:
        """Hosts whose next page request is further off than a page may wait."""
        now = self._clock()
        return {host for host, when in self._next_page.items() if when - now > MAX_PAGE_WAIT}

    @asynccontextmanager
    async def page_slot(self, host: str) -> AsyncIterator[None]:
        """Wait for the host's turn (its pace) and a free slot; hold the slot in the block.

        Raise HostPausedError when the turn is further off than MAX_PAGE_WAIT.
        """
        gate = self.gate(host)
        async with self._turns.setdefault(host, asyncio.Lock()):
            # Looked at again after each wait: a pause may have come meanwhile (a 429).
            while (wait := self._next_page.get(host, 0.0) - self._clock()) > 0:
                if wait > MAX_PAGE_WAIT:
                    raise HostPausedError(host, wait)
                await asyncio.sleep(wait)
            # The slot is taken within the turn, so the pace counts from the request's start.
            await gate.acquire()
            self._next_page[host] = self._clock() + self.page_interval
        try:
            yield
        finally:
            gate.release()
