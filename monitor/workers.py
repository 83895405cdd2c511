"""Who holds a lease: worker names (``host:pid``, ``host:pid:random``) and whether the process a
name points at still runs on this host.

Feed and delivery leases expire by themselves, which covers a worker on another machine that
died; but a process of this machine that is gone can be told at once, and its leases need not
wait out their time. A process is "of this machine" when its name starts with this host's
name: processes sharing a host name must share one process table, as they do on one machine
or in one container (containers have a host name of their own).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST_LENGTH = 80


def host_name() -> str:
    """This machine's name, as worker names carry it."""
    return socket.gethostname()[:HOST_LENGTH]


def process_running(pid: int) -> bool:
    """Whether a process with this id runs here (a zombie that has not been reaped has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): the signal said it exists
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def local_worker_gone(name: str | None) -> bool:
    """Whether ``name`` is a worker of this host (``host:pid...``) whose process has ended.

    Any other name (another host, a name set in the settings, this very process) is not known
    to be gone: its lease is left to expire.
    """
    if not name:
        return False
    host, _, rest = name.partition(":")
    pid_text = rest.partition(":")[0]
    ours = socket.gethostname()
    # Delivery leases carry the first 60 characters of the name, feed leases the first 80.
    if host not in (ours[:60], ours[:HOST_LENGTH]) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 1:
        return False
    return not process_running(pid)
