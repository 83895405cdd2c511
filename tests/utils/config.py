"""Write a configuration directory (monitor.toml and companions) for a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.settings import Settings, load_settings
from monitor.sources.opml import OpmlFeed, write_opml

FIXTURES = Path(__file__).parent.parent / "fixtures"

DEFAULT_TOPICS: list[dict[str, Any]] = [
    {
        "slug": "election-interference",
        "name": "Election interference",
        "query": '"election interference" OR "interfere in the election" '
        'OR "meddl* in the election"',
    },
    {
        "slug": "russian-disinformation",
        "name": "Russian disinformation",
        "query": '"russian disinformation" OR "disinformation campaign*" OR "troll farm*"',
    },
    {
        # The legacy form, still accepted: a list of keywords, matched when any occurs.
        "slug": "central-banks",
        "name": "Central banks",
        "keywords": ["central bank", "interest rate*"],
    },
]


def fixture_feed(name: str) -> bytes:
    """The bytes of ``tests/fixtures/feeds/<name>``."""
    return (FIXTURES / "feeds" / name).read_bytes()


class ConfigWriter:
    """Builds ``monitor.toml``, ``feeds.opml``, ``topics.yaml`` and ``subscriptions.yaml``."""

    def __init__(self, directory: Path, *, database_url: str, outbox: Path) -> None:
        self.directory = directory
        self.database_url = database_url
        self.outbox = outbox
        self.smtp_port: int | None = None
        self.feeds: list[str] = []
        self.topics: list[dict[str, Any]] = [dict(t) for t in DEFAULT_TOPICS]
        self.subscribers: list[dict[str, Any]] = [
            {
                "email": "analyst@example.org",
                "name": "Ada Analyst",
                "timezone": "Europe/Berlin",
                "daily": "08:00",
                "topics": ["election-interference", "russian-disinformation"],
            }
        ]
        self.extra_toml = ""
        # Article pages stay off unless a test turns them on: fixture feeds link to
        # example.com, and fetching those would look the names up in DNS.
        self.pages: dict[str, str] = {"enabled": "false"}

    def toml(self) -> str:
        mail = (
            f'transport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {self.smtp_port}\n'
            'smtp_security = "none"\nsmtp_timeout = "10s"\n'
            if self.smtp_port
            else 'transport = "files"\n'
        )
        return (
            f'[database]\nurl = "{self.database_url}"\n\n'
            f'[mail]\n{mail}outbox_dir = "{self.outbox}"\nfrom_address = "monitor@example.net"\n\n'
            # The feed server listens on 127.0.0.1, which the address guard refuses by default.
            '[fetch]\ntimeout = "10s"\nallow_networks = ["127.0.0.0/8"]\n\n'
            "[pages]\n" + "".join(f"{key} = {value}\n" for key, value in self.pages.items()) + "\n"
            f"{self.extra_toml}"
        )

    def write(self) -> Path:
        """Write every file; return the path of ``monitor.toml``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "monitor.toml").write_text(self.toml())
        (self.directory / "feeds.opml").write_bytes(write_opml(OpmlFeed(url) for url in self.feeds))
        (self.directory / "topics.yaml").write_text(yaml.safe_dump({"topics": self.topics}))
        (self.directory / "subscriptions.yaml").write_text(
            yaml.safe_dump({"subscribers": self.subscribers})
        )
        return self.directory / "monitor.toml"

    def settings(self) -> Settings:
        """Write the files and load them as monitor would."""
        return load_settings(self.write())
