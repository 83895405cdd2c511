"""What `monitor run --web` and `monitor web` print once the web app listens: its address, and
how to create the first admin account when there is none (the pages need one to sign in)."""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import AdminUser
from monitor.settings import WebSettings

# Listening on every address: a browser on this machine reaches it on the loopback address.
_ANY_HOST = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def web_address(web: WebSettings) -> str:
    """The URL a browser on this machine opens to reach the web app."""
    host = _ANY_HOST.get(web.host, web.host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{web.port}/"


def has_admin(engine: Engine) -> bool:
    """Whether any admin account exists."""
    with Session(engine) as session:
        return session.exec(select(AdminUser.id).limit(1)).first() is not None


def monitor_command(config: Path | None, argv0: str | None = None) -> str:
    """How to run this same ``monitor`` again from the current directory, with its config."""
    program = Path(argv0 if argv0 is not None else sys.argv[0])
    if program.name == "monitor" and program.is_file():
        try:
            shown = program.resolve().relative_to(Path.cwd().resolve())
            words = [str(shown) if shown.parent != Path(".") else f"./{shown}"]
        except ValueError:
            words = [str(program)]
    else:
        # `python -m monitor` (argv[0] is __main__.py) or an entry point by another name.
        words = [sys.executable, "-m", "monitor"]
    if config is not None:
        words += ["--config", str(config)]
    return shlex.join(words)


def first_run_lines(web: WebSettings, engine: Engine, *, command: str) -> list[str]:
    """The lines printed when the web app starts: its URL, then the first-admin hint if due."""
    address = web_address(web)
    lines = [f"web app: {address} (listening on {web.host}:{web.port})"]
    if web.base_url.rstrip("/") + "/" != address:
        lines.append(f"links in e-mails point to web.base_url: {web.base_url}")
    if not has_admin(engine):
        lines += [
            "no admin account yet: the pages need one to sign in. In another terminal, run",
            f"    {command} users add admin",
            "and choose a password; then sign in at " + address + "login",
        ]
    return lines
