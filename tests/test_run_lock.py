"""One ``monitor run`` per SQLite file: a second is refused with a message naming the first,
and the lock goes with its holder however it ends (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.utils.config import ConfigWriter

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


class Run:
    """A ``monitor run`` process, its log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
            env={**os.environ, "MONITOR_FETCH_PARSE_PROCESSES": "0"},
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            assert self.process.poll() is None, "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(self.lines)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_run_on_one_sqlite_file_is_refused(config: ConfigWriter, db_url: str) -> None:
    path = config.write()
    database = db_url.removeprefix("sqlite:///")
    first = Run(path)
    try:
        first.wait_for("monitor running")

        second = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(path), "run"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip

        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"error: database: another `monitor run` (pid {first.process.pid}) is using "
            f"{database}; SQLite takes one service at a time (lock {database}.lock); use "
            "PostgreSQL for several workers"
        ]
        assert first.process.poll() is None, "the first one keeps running"

        # Killed, it leaves no lock behind: the next one starts.
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        again = Run(path)
        try:
            again.wait_for("monitor running")
        finally:
            again.stop()
    finally:
        first.stop()
