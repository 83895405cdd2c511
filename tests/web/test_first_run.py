"""The first run: the commands of `make run`, in a fresh directory, print the web app's URL and
how to create the first admin; following them in Chromium leads to a signed-in dashboard."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import expect

from monitor.settings import WebSettings
from monitor.web.firstrun import monitor_command, web_address
from tests.utils.config import ConfigWriter
from tests.web.browser import chromium_tab

REPO = Path(__file__).resolve().parent.parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PASSWORD = "first run password 1"


def make_run_commands() -> list[str]:
    """The shell lines `make run` would run, with the install step taken as done."""
    if not (VENV_BIN / "monitor").is_file():
        pytest.skip("no .venv/bin/monitor: run `make run` or install monitor into .venv first")
    venv = REPO / ".venv"
    result = subprocess.run(
        ["make", "-s", "-n", "-o", str(venv / ".installed"), "run", f"VENV={venv}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if line.strip()]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """A queue the stream's lines arrive in, read on a thread (``""`` at the end)."""
    arrived: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            arrived.put(line.rstrip("\n"))
        arrived.put("")

    threading.Thread(target=pump, daemon=True).start()
    return arrived


def wait_for(arrived: queue.Queue[str], pattern: str, seen: list[str]) -> re.Match[str]:
    """The first line (from now) matching ``pattern``; every line read lands in ``seen``."""
    while True:
        try:
            line = arrived.get(timeout=60)
        except queue.Empty:
            lines = "\n".join(seen)
            raise AssertionError(f"no line matching {pattern} in:\n{lines}") from None
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
        assert line != "" or arrived.qsize(), "the command ended:\n" + "\n".join(seen)


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], int]]:
    commands = make_run_commands()
    assert commands[-1].endswith("monitor run --web"), commands
    port = free_port()
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    writer.extra_toml = (
        f'[web]\nport = {port}\nbase_url = "http://127.0.0.1:{port}"\n'
        f'secret_key_file = "{tmp_path / "key"}"\n'
    )
    config = writer.write()
    env = {**os.environ, "MONITOR_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    for line in commands[:-1]:  # monitor init
        subprocess.run(shlex.split(line), cwd=tmp_path, env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        shlex.split(commands[-1]), cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield process, lines_of(process.stdout), port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
def test_make_run_prints_the_url_and_how_to_add_the_first_admin(
    first_run: tuple[subprocess.Popen[str], queue.Queue[str], int], tmp_path: Path
) -> None:
    process, arrived, port = first_run
    seen: list[str] = []
    url = wait_for(arrived, r"web app: (http://\S+)", seen).group(1)
    assert url == f"http://127.0.0.1:{port}/"
    wait_for(arrived, r"no admin account yet", seen)
    command = wait_for(arrived, r"^\s+(.+ users add admin)$", seen).group(1)
    assert command == f"{VENV_BIN / 'monitor'} users add admin"

    with chromium_tab() as tab:
        page = tab.page
        page.goto(url)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # Follow the printed instruction (the password from stdin rather than the prompt).
        env = {**os.environ, "MONITOR_CONFIG": str(tmp_path / "config" / "monitor.toml")}
        subprocess.run(
            [*shlex.split(command), "--password-stdin"], input=PASSWORD + "\n", text=True,
            cwd=tmp_path, env=env, check=True, capture_output=True,
        )  # fmt: skip
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        assert tab.errors == []
    assert process.poll() is None, "\n".join(seen)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080/"),
        ("0.0.0.0", 80, "http://127.0.0.1:80/"),
        ("::", 8080, "http://[::1]:8080/"),
        ("::1", 9000, "http://[::1]:9000/"),
        ("monitor.internal", 8080, "http://monitor.internal:8080/"),
    ],
)
def test_web_address_is_one_a_local_browser_opens(host: str, port: int, url: str) -> None:
    assert web_address(WebSettings(host=host, port=port)) == url


def test_monitor_command_repeats_the_config_option(tmp_path: Path) -> None:
    program = tmp_path / "bin" / "monitor"
    program.parent.mkdir()
    program.write_text("")
    config = Path("my config/monitor.toml")
    assert monitor_command(config, str(program)) == f"{program} --config 'my config/monitor.toml'"
    assert monitor_command(None, "/no/such/__main__.py").endswith(" -m monitor")
