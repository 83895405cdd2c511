"""One ``monitor run`` per SQLite database: a lock file beside it, held while the service runs.

SQLite suits one service process; a second ``monitor run`` on the same file would poll the same
feeds and fight over the write lock. The service holds an OS lock (``flock``) on
``<database>.lock`` for as long as it runs, so a second one is refused at start with a message
naming the first; the operating system drops the lock with the process however it ends, so a
crash never leaves it behind. Other commands (``poll``, ``digest send``, ``web``) do not take
it. PostgreSQL needs no such lock: workers there share the work (see "Several workers").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from monitor.db import normalise_database_url
from monitor.errors import DatabaseError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no lock, as before
    fcntl = None  # type: ignore[assignment]


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database file (None: PostgreSQL, or SQLite in memory)."""
    url = normalise_database_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.lock")


@contextlib.contextmanager
def hold_service_lock(database_url: str) -> Iterator[None]:
    """Hold the service's lock on a SQLite database while the block runs; DatabaseError when
    another process holds it."""
    path = lock_path(database_url)
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise DatabaseError(
                f"database: another `monitor run`{who} is using {path.with_suffix('')}; SQLite "
                f"takes one service at a time (lock {path}); use PostgreSQL for several workers"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # closing drops the lock
