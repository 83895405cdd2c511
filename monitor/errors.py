"""Errors monitor raises on purpose, each one carrying a message a user can act on.

The tree::

    MonitorError                  anything monitor reports to a user (one line, no traceback)
     +-- ConfigError              a config file or MONITOR_* variable is wrong (file, key or line)
     +-- DatabaseError            the database cannot be reached or is not at the expected revision
     +-- FeedError                one feed could not be refreshed (carries the feed URL)
     |    +-- FetchError          the HTTP exchange failed: network, status, size, deadline
     |    +-- ParseError          the body is not a feed we can read
     +-- ExtractError             an article's page holds no text we can use (not HTML, too short,
 |                            a consent or paywall page, the extractor failed on it)
 +-- DeliveryError            a digest could not be handed to the mail transport
     |    +-- TemporaryDeliveryError   worth retrying later (4xx, connection refused, timeout)
     |    |    +-- TransportUnavailableError  the server cannot be reached at all: stop the batch
     |    +-- PermanentDeliveryError   retrying will not help (5xx): the delivery is marked failed
     |         +-- ChannelGoneError       a channel's endpoint says it is gone (410): disable it
     +-- NotFoundError            a feed, topic or subscriber named by the user does not exist
     +-- UsageError               a command-line value is malformed (a duration, an e-mail address)

Errors carry their package in the message, as in ``fetch: connection refused``.
"""

from __future__ import annotations

from datetime import timedelta


class MonitorError(Exception):
    """Base of every error monitor reports to a user."""


class ConfigError(MonitorError):
    """A configuration file or environment variable is wrong."""

    def __init__(self, source: str, message: str, *, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.detail = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class DatabaseError(MonitorError):
    """The database cannot be reached or used."""


class FeedError(MonitorError):
    """One feed could not be refreshed."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.reason = message
        super().__init__(f"{url}: {message}")


class FetchError(FeedError):
    """The HTTP exchange for a feed failed."""

    def __init__(self, url: str, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(url, f"fetch: {message}")


class ParseError(FeedError):
    """A fetched body is not a feed monitor can read."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(url, f"parse: {message}")


class ExtractError(MonitorError):
    """An article's page holds no article text we can use; ``reason`` says why."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.reason = f"extract: {message}"
        super().__init__(f"{url}: {self.reason}" if url else self.reason)


class DeliveryError(MonitorError):
    """A message could not be handed to the mail transport."""


class TemporaryDeliveryError(DeliveryError):
    """A delivery failure that a later attempt may get past; ``retry_after`` when the other
    side said how long to wait (a channel's 429 or 503 with Retry-After)."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransportUnavailableError(TemporaryDeliveryError):
    """The mail server cannot be reached or refuses our login: no message of this run can go."""


class PermanentDeliveryError(DeliveryError):
    """A delivery failure that retrying will not fix."""


class ChannelGoneError(PermanentDeliveryError):
    """A channel's endpoint answered 410 Gone: it wants nothing more, so the channel is
    disabled (Standard Webhooks' advice) until someone enables it again."""


class NotFoundError(MonitorError):
    """Something named by the user does not exist."""


class UsageError(MonitorError):
    """A value given on the command line is malformed."""
