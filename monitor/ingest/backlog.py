"""Backlog: articles published well before monitor first saw them, told apart at ingest.

Sits in ingest, where a new article's row is made (``monitor.ingest.store``), for both the
pool and the in-process path. A new feed lists its archive (a year of items, sometimes more);
a feed back from an outage lists what it published meanwhile. Those articles are stored and
searchable like any other, but they are not news of the day: reports do not count them in a
topic's volume or usual level, and digests, instant alerts and topic feeds do not send them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# How long before its first sighting an article may have been published and still be news.
DEFAULT_BACKLOG_AFTER = timedelta(days=2)


def clamp_published(published_at: datetime | None, now: datetime) -> datetime | None:
    """The publication date to store: a date in the future (a wrong zone, a typo) is now."""
    if published_at is None or published_at <= now:
        return published_at
    return now


def is_backlog(
    published_at: datetime | None,
    *,
    now: datetime,
    first_poll: bool,
    after: timedelta = DEFAULT_BACKLOG_AFTER,
) -> bool:
    """Whether an article first seen ``now`` is backlog rather than news.

    Published more than ``after`` before it was first seen, it is backlog. Without a date it is
    news, except on its feed's first poll: the first listing of a feed is its archive, and an
    undated item there is as likely years old as new.
    """
    if published_at is None:
        return first_poll
    return published_at < now - after
