"""A killed monitor leaves no process behind: its parse workers, the fork server and the
resource tracker of its pool end with it, within seconds.

``monitor poll`` and ``monitor run`` run as real processes with a real pool of parse workers;
each is killed with SIGKILL (as the OOM killer does) while its workers are up, and its former
children are counted a few seconds later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer
from tests.utils.processes import (
    command_line,
    kill_all,
    wait_for_descendants,
    wait_until_gone,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
# The fork server, the resource tracker and one parse worker.
POOL_PROCESSES = 3
GRACE_SECONDS = 5


@pytest.mark.parametrize("command", ["poll", "run"])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigkill_of_monitor_ends_its_pool_processes(
    config: ConfigWriter, feed_server: FeedServer, command: str
) -> None:
    fast = feed_server.add("/world.rss", fixture_feed("world.rss"))
    # Dripped a byte a second: the poll is still at work when it is killed.
    slow = feed_server.add("/slow.rss", fixture_feed("markets.atom"), chunk_size=1, chunk_delay=1)
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
        # The pool starts when the first fetched body is handed to it.
        below = wait_for_descendants(process.pid, POOL_PROCESSES)
        children = {pid: command_line(pid) for pid in below}
        assert process.poll() is None, "monitor must still be at work when it is killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        left = wait_until_gone(set(children), GRACE_SECONDS)
        assert not left, f"still running {GRACE_SECONDS}s after monitor {command} was killed: " + (
            "; ".join(f"{pid} {children[pid]}" for pid in sorted(left))
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        kill_all(children)
