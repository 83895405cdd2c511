"""``orphans``: what a poller killed with SIGKILL leaves behind, and for how long.

``monitor poll`` and ``monitor run`` each run as a real process with one parse worker
(``fetch.parse_processes = 1``, what a 2-core machine gets), polling a fixture feed and one
that drips a byte a second from a server on 127.0.0.1, so the poll is still at work. Once the
pool is up (fork server, resource tracker, parse worker), the memory of the poller's
descendants is summed (RSS, and PSS, which splits shared pages between processes), the poller
is killed with SIGKILL, as the OOM killer does, and its former children are watched: how many
still run after a few seconds, and when the last one ended (or that it had not after
``WATCH_SECONDS``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Table
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import running_feed_server
from tests.utils.processes import command_line, kill_all, living, wait_for_descendants

TITLE = "orphans: a poller killed with SIGKILL, and its pool's processes"
POOL_PROCESSES = 3  # fork server, resource tracker, one parse worker
GRACE_SECONDS = 5
WATCH_SECONDS = 60
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    """One kill: the pool's size and memory at the kill, and how its processes ended."""

    processes: int
    rss_mb: float
    pss_mb: float
    after_grace: int
    gone_after: float | None  # seconds; None: some still ran after WATCH_SECONDS


def memory_mb(pids: set[int]) -> tuple[float, float]:
    """Summed RSS and PSS of these processes, in MB (from /proc/PID/smaps_rollup)."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name in ("Rss", "Pss"):
                kilobytes = int(value.split()[0])
                rss, pss = (rss + kilobytes, pss) if name == "Rss" else (rss, pss + kilobytes)
    return rss / 1024, pss / 1024


def kill_one(command: str, directory: Path) -> Figures:
    """Start ``monitor COMMAND``, kill it once its pool is up, watch its former children."""
    with running_feed_server() as server:
        fast = server.add("/world.rss", fixture_feed("world.rss"))
        slow = server.add("/slow.rss", fixture_feed("markets.atom"), chunk_size=1, chunk_delay=1)
        config = ConfigWriter(directory / command, database_url=f"sqlite:///{directory}/"
                              f"{command}.db", outbox=directory / "outbox")  # fmt: skip
        config.feeds = [fast, slow]
        config.extra_toml = '[schedule]\ntick = "1s"\n'
        path = config.write()
        env = {**os.environ, "MONITOR_FETCH_PARSE_PROCESSES": "1", "MONITOR_FETCH_TIMEOUT": "120s"}
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(path), command],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env,
        )  # fmt: skip
        children: dict[int, str] = {}
        try:
            below = wait_for_descendants(process.pid, POOL_PROCESSES)
            time.sleep(1)  # the worker has imported the parsers and prepared the first feed
            below = living(below)
            children = {pid: command_line(pid) for pid in below}
            rss, pss = memory_mb(below)
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed = time.monotonic()
            after_grace: int | None = None
            gone_after: float | None = None
            while time.monotonic() - killed < WATCH_SECONDS:
                alive = living(below)
                elapsed = time.monotonic() - killed
                if after_grace is None and elapsed >= GRACE_SECONDS:
                    after_grace = len(alive)
                if not alive:
                    gone_after = elapsed
                    break
                time.sleep(0.05)
            if after_grace is None:
                after_grace = 0
            return Figures(len(below), rss, pss, after_grace, gone_after)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            kill_all(children)


def run() -> list[Table]:
    """Kill ``monitor poll`` and ``monitor run`` once each and tabulate what was left."""
    table = Table(TITLE, ["poll", "run"])
    with tempfile.TemporaryDirectory(prefix="monitor-bench-orphans-") as directory:
        figures = [kill_one(command, Path(directory)) for command in ("poll", "run")]
    table.add("pool processes at the kill", "", *(f.processes for f in figures))
    table.add("their memory at the kill, RSS", "MB", *(f.rss_mb for f in figures))
    table.add("their memory at the kill, PSS", "MB", *(f.pss_mb for f in figures))
    after = f"still running {GRACE_SECONDS} s after the kill"
    table.add(after, "", *(f.after_grace for f in figures))
    table.add(
        "last one gone after",
        "s",
        *(f.gone_after if f.gone_after is not None else f">{WATCH_SECONDS}" for f in figures),
    )
    return [table]
