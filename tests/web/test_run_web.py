"""``monitor run --web``: the service and the web app in one process, stopped together."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.config import ConfigWriter


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "stop"),
    [
        (["run", "--web"], signal.SIGTERM),
        # `monitor web` on its own stops the same way: status 0, not 143 (128 + SIGTERM).
        (["web"], signal.SIGTERM),
        (["web"], signal.SIGINT),
    ],
)
def test_monitor_run_web_serves_the_ui_and_stops_on_sigterm(
    tmp_path: Path, command: list[str], stop: signal.Signals
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    writer.extra_toml = f'[web]\nport = {port}\nsecret_key_file = "{tmp_path / "key"}"\n'
    path = writer.write()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(path), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        response = None
        for _ in range(600):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.05)
        assert response is not None, "monitor run --web did not start listening"
        assert response.status_code == 200
        assert "<h1>Sign in</h1>" in response.text
    finally:
        process.send_signal(stop)
        code = process.wait(timeout=60)
        output = process.stdout.read().decode() if process.stdout else ""
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0, output
