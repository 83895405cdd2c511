"""monitor as a user runs it: the console command in real processes, against real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from monitor.db import create_db_engine
from monitor.models import Article
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer
from tests.utils.smtpserver import SmtpServer, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def monitor(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m monitor --config CONFIG ARGS`` and return its output; fail loudly."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, f"monitor {' '.join(args)} failed:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def test_poll_then_digest_twice_sends_once(
    config: ConfigWriter, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    world = feed_server.add("/world.rss", fixture_feed("world.rss"))
    # The fixture feed was published in 2024 and is polled now: without this it is all backlog.
    config.extra_toml = '[ingest]\nbacklog_after = "100000d"\n'
    path = config.write()  # mail goes to files unless the environment says otherwise
    smtp = {"MONITOR_MAIL_TRANSPORT": "smtp", "MONITOR_MAIL_SMTP_HOST": "127.0.0.1",
            "MONITOR_MAIL_SMTP_PORT": str(smtp_server.port),
            "MONITOR_MAIL_SMTP_SECURITY": "none"}  # fmt: skip

    assert "added" in monitor(path, "feeds", "add", world)
    monitor(path, "poll")
    assert "sent to analyst@example.org via SMTP 127.0.0.1" in monitor(
        path, "digest", "send", env=smtp
    )
    monitor(path, "poll")
    assert monitor(path, "digest", "send", env=smtp) == "nothing new to send\n"

    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0].message
    assert message["To"] == "Ada Analyst <analyst@example.org>"
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    assert not config.outbox.exists()


class Service:
    """A ``monitor run`` process whose log lines are collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        log = "".join(self.lines)
        raise AssertionError(f"no log line with {text!r} within {timeout}s; log:\n{log}")


@contextmanager
def running_service(config: Path) -> Iterator[Service]:
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        yield Service(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_service_polls_survives_bad_feeds_and_config_and_stops_cleanly(
    config: ConfigWriter, feed_server: FeedServer, db_url: str, stop_signal: signal.Signals
) -> None:
    good = feed_server.add("/world.rss", fixture_feed("world.rss"))
    unreachable = f"http://127.0.0.1:{free_port()}/feed.xml"
    config.feeds = [good, unreachable]
    config.extra_toml = '[schedule]\ntick = "1s"\n'
    path = config.write()

    with running_service(path) as service:
        failed = service.wait_for(f"feed_url={unreachable}")
        assert "cannot connect" in failed
        service.wait_for(f"feed refreshed feed_id=1 feed_url={good} new=5 matches=2")
        (path.parent / "topics.yaml").write_text("topics:\n  - slug: Bad Slug\n")
        reload_error = service.wait_for("configuration not reloaded")
        assert "topics.yaml:2" in reload_error
        time.sleep(1.5)
        assert service.process.poll() is None, "the service must keep running"

        service.process.send_signal(stop_signal)
        assert service.process.wait(timeout=30) == 0
        service.wait_for("monitor stopped")
        assert not any("Traceback" in line for line in service.lines)

    engine = create_db_engine(db_url)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Article)).one() == 5
    engine.dispose()
