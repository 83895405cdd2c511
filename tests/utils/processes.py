"""Process trees read from /proc: a process's descendants, and which of them still live."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or parentheses itself.
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``: children, their children, and so on."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents.setdefault(found[1], []).append(int(entry.name))
    below: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child)
    return below


def living(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped has finished)."""
    alive = set()
    for pid in pids:
        found = _stat(pid)
        if found is not None and found[0] != "Z":
            alive.add(pid)
    return alive


def wait_for_descendants(pid: int, count: int, timeout: float = 60) -> set[int]:
    """Wait until ``pid`` has at least ``count`` descendants; return them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        below = descendants(pid)
        if len(below) >= count:
            return below
        time.sleep(0.1)
    raise AssertionError(f"process {pid} had {len(descendants(pid))} descendants, not {count}")


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to end; the ones still running then."""
    deadline = time.monotonic() + timeout
    while (alive := living(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def command_line(pid: int) -> str:
    """A process's command line, for messages."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def kill_all(commands: dict[int, str]) -> None:
    """SIGKILL whatever of these processes still runs (a failed test must not leave them
    behind); only a pid whose command line is still the one recorded, never a reused pid."""
    for pid in living(set(commands)):
        if command_line(pid) == commands[pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
