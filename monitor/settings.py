"""Settings: ``config/monitor.toml``, overridden by ``MONITOR_<SECTION>_<KEY>`` variables."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from monitor.errors import ConfigError, UsageError

ENV_PREFIX = "MONITOR_"
CONFIG_ENV = "MONITOR_CONFIG"
DEFAULT_CONFIG = Path("config/monitor.toml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """Read ``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` or ``"1w"`` as a duration."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise UsageError(f"not a duration: {value!r} (use a number with s, m, h, d or w, as 15m)")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])


def _duration_field(value: object) -> timedelta:
    try:
        return parse_duration(value)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, BeforeValidator(_duration_field)]


def _list_field(value: object) -> object:
    """A list given as text (an environment variable): a JSON list, or comma-separated."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(
                f'not a list: {value!r} (use a JSON list, as ["a", "b"], or a, b)'
            ) from None
    return [part.strip() for part in text.split(",") if part.strip()]


# A list setting: a TOML array, or in MONITOR_* variables "a, b" as well as '["a", "b"]'.
StrList = Annotated[list[str], NoDecode, BeforeValidator(_list_field)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    """Where articles and state are kept."""

    url: str = "sqlite:///var/monitor.db"
    echo: bool = False


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not a network: {value!r} (use CIDR, as 10.0.0.0/8)") from None
    return value.strip()


class FetchSettings(_Section):
    """How feeds are requested."""

    user_agent: str = "monitor/0.1 (+https://github.com/monitor-news/monitor; feed poller)"
    timeout: Duration = timedelta(seconds=30)
    connect_timeout: Duration = timedelta(seconds=10)
    max_bytes: int = Field(default=20_000_000, gt=0)
    concurrency: int = Field(default=20, gt=0)
    # At most this many fetches at once to any one host.
    per_host: int = Field(default=2, gt=0)
    # The longest wait a server's Retry-After (on 429 and 503) can impose on a feed.
    max_retry_after: Duration = timedelta(hours=6)
    # Fetch without ETag / Last-Modified this often, because some servers' validators lie.
    revalidate_every: Duration = timedelta(days=1)
    # Networks a feed may be fetched from besides the public Internet (CIDR, e.g. 10.1.0.0/16).
    # Loopback, private, link-local, CGNAT, multicast and reserved addresses are refused otherwise.
    allow_networks: Annotated[
        list[Annotated[str, AfterValidator(_network)]], NoDecode, BeforeValidator(_list_field)
    ] = []
    # Processes that parse, sketch and tag fetched feeds: empty for one per core less one (the
    # poller is busy too), 0 to do that work in a thread of the polling process.
    parse_processes: int | None = Field(default=None, ge=0)
    # Feeds whose writes share one transaction (each in its own savepoint).
    write_batch: int = Field(default=64, gt=0)


class PagesSettings(_Section):
    """Article pages: fetching each new article's page and extracting its body.

    The fetch goes through the feed fetcher (fetch.*: address guard, deadline, User-Agent,
    Retry-After); these settings say which pages, how politely, and how much is kept.
    """

    # false: no page is fetched, whatever the feeds say.
    enabled: bool = True
    # A feed set to fetch_pages "auto" has a page fetched when its text for the item (summary
    # and content) is shorter than this many characters.
    auto_below: int = Field(default=500, ge=0)
    # Pages fetched at once, all hosts together.
    concurrency: int = Field(default=8, gt=0)
    # The least time between the starts of two page requests to one host (feeds have their
    # own rhythm; at once, feeds and pages share fetch.per_host).
    per_host_interval: Duration = timedelta(seconds=1)
    # Cap on a page's decoded size; a larger page is not read (its article keeps the feed text).
    max_bytes: int = Field(default=5_000_000, gt=0)
    # The extracted body is kept up to this many characters (cut at a paragraph).
    max_body_chars: int = Field(default=100_000, ge=1000)
    # An extraction shorter than this is not the article (a teaser, a consent wall, a menu).
    min_chars: int = Field(default=200, ge=1)
    # CPU one page's extraction may take in a worker process before it is stopped.
    extract_timeout: Duration = timedelta(seconds=10)
    # Attempts per page, the first included; retries wait retry_backoff, doubling each time.
    max_attempts: int = Field(default=4, ge=1)
    retry_backoff: Duration = timedelta(minutes=10)
    # Pages of articles first seen longer ago than this are no longer fetched.
    max_age: Duration = timedelta(days=2)


class ScheduleSettings(_Section):
    """How often the service looks for work and how often each feed is checked."""

    tick: Duration = timedelta(seconds=60)
    poll_interval: Duration = timedelta(minutes=15)
    # Bounds of each feed's own interval, adapted to its hints and how often it publishes.
    min_interval: Duration = timedelta(minutes=5)
    max_interval: Duration = timedelta(days=1)
    # Next checks are spread by this fraction either way, so feeds do not stay in lock-step.
    jitter: float = Field(default=0.1, ge=0, lt=1)
    max_backoff: Duration = timedelta(hours=12)
    feeds_per_tick: int = Field(default=500, gt=0)
    shutdown_grace: Duration = timedelta(seconds=20)
    # How long a worker holds a due feed it claimed: another worker takes the feed over only
    # after this, so it must outlast a slow fetch (fetch.timeout) plus parsing and storing,
    # waiting for a per-host slot included.
    lease: Duration = timedelta(minutes=10)
    # This worker's name in feed leases; empty: host name and process id. Unique per process.
    worker_id: str = Field(default="", max_length=100)


class MailSettings(_Section):
    """How digests leave: an SMTP server, or ``.eml`` files when no server is configured."""

    transport: Literal["auto", "smtp", "files"] = "auto"
    from_address: str = "monitor@localhost"
    from_name: str = "monitor"
    outbox_dir: Path = Path("var/outbox")
    smtp_host: str = ""
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: Duration = timedelta(seconds=30)
    # CA certificates (PEM) to trust besides the system's: for a server a private CA signed.
    smtp_ca_file: Path | None = None
    retry_backoff: Duration = timedelta(minutes=5)
    max_retry_backoff: Duration = timedelta(hours=6)
    # Replies go here when set (the From address otherwise).
    reply_to: str = ""
    # Messages per minute to the SMTP server; 0 sends as fast as it accepts.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    # How long a worker holds a delivery it is sending before another may take it over.
    lease: Duration = timedelta(minutes=10)

    def uses_smtp(self) -> bool:
        """Whether mail goes to an SMTP server rather than to files."""
        return self.transport == "smtp" or (self.transport == "auto" and bool(self.smtp_host))


class ChannelsSettings(_Section):
    """Webhooks and Apprise channels: their limits, retries and the networks they may reach."""

    # The whole exchange with a channel, connecting to the last byte of the answer.
    timeout: Duration = timedelta(seconds=15)
    # At most this much of an answer is read (its start is recorded when a send fails).
    max_response_bytes: int = Field(default=65_536, gt=0)
    # Networks (CIDR) a channel may post to besides the public Internet: an intranet chat.
    allow_networks: Annotated[
        list[Annotated[str, AfterValidator(_network)]], NoDecode, BeforeValidator(_list_field)
    ] = []
    retry_backoff: Duration = timedelta(minutes=1)
    max_retry_backoff: Duration = timedelta(hours=6)
    # The longest wait a channel's Retry-After (on 429 and 503) can impose.
    max_retry_after: Duration = timedelta(hours=6)
    # A delivery still failing this long after it was planned is marked failed for good.
    give_up_after: Duration = timedelta(days=3)
    # Channels sent to at once; each channel's own deliveries go one after another.
    concurrency: int = Field(default=8, gt=0)
    # Stories a chat message lists; the rest are counted and linked to the digest's page.
    max_stories: int = Field(default=10, gt=0)


class DigestSettings(_Section):
    """What goes into a digest."""

    first_lookback: Duration = timedelta(days=1)
    max_articles: int = Field(default=200, gt=0)
    excerpt_chars: int = Field(default=280, gt=20)
    subject_prefix: str = "[monitor]"


class TopicsSettings(_Section):
    """How topics are applied to stored articles."""

    retag_window: Duration = timedelta(days=30)


class WebSettings(_Section):
    """The web app: where it listens, its public address (for links in e-mails) and the key
    that signs unsubscribe links."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, gt=0, lt=65536)
    base_url: str = "http://127.0.0.1:8080"
    # Signs unsubscribe tokens. Empty: a random key is made once and kept in var/secret_key.
    secret_key: str = ""
    secret_key_file: Path = Path("var/secret_key")
    # Bearer token for the JSON API's write endpoints (Authorization: Bearer ...). Empty: off.
    api_token: str = ""
    # Whether the JSON API's reads and the topics' Atom feeds are open to anyone. Off: they need
    # the API token, a signed-in session, or (Atom) the topic's own feed token.
    public_reads: bool = False
    # How long a sign-in lasts; the session cookie is re-signed on each page, so it is idle time.
    session_lifetime: Duration = timedelta(hours=12)
    # Sign-in throttling: this many failures for one name or one address within the window
    # refuse further tries until the oldest failure leaves the window.
    login_max_failures: int = Field(default=5, ge=1)
    login_window: Duration = timedelta(minutes=15)
    # Mark cookies Secure: "auto" when the request came over https (or base_url is https),
    # "always" or "never" to force it.
    secure_cookies: Literal["auto", "always", "never"] = "auto"


def _zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name: Europe/Paris)") from None
    return value


def _local_time(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"not a local time: {value!r} (use HH:MM, as 07:00)")
    return value


class ReportsSettings(_Section):
    """The daily alert report: its day's time zone, spike rule, feed-health rules, reviewers."""

    timezone: Annotated[str, AfterValidator(_zone_name)] = "UTC"
    # A day is a spike when z >= spike_z and it has at least spike_min_articles articles.
    spike_z: float = Field(default=3.0, gt=0)
    spike_min_articles: int = Field(default=5, ge=1)
    baseline_days: int = Field(default=28, ge=1)
    chart_days: int = Field(default=30, ge=1, le=366)
    top_n: int = Field(default=5, ge=1)
    # A feed is silent when its silence lasts this many times its usual gap between articles.
    silent_factor: float = Field(default=4.0, gt=1)
    failing_for: Duration = timedelta(days=1)
    build_at: Annotated[str, AfterValidator(_local_time)] = "07:00"
    reviewers: StrList = []


class StoriesSettings(_Section):
    """Canonical links and stories: which copies of an article across outlets are one story."""

    window: Duration = timedelta(days=7)
    threshold: float = Field(default=0.55, gt=0, le=1)
    lead_words: int = Field(default=200, ge=10)
    probe_words: int = Field(default=40, ge=5)
    min_words: int = Field(default=12, ge=1)
    # Dropped from links besides the built-in tracking parameters (utm_*, fbclid, gclid, ...).
    tracking_parameters: StrList = []


class IngestSettings(_Section):
    """What storing new articles decides: which of them are backlog rather than news."""

    # Published this long before it was first seen, an article is backlog (see the README).
    backlog_after: Duration = Field(default=timedelta(days=2), gt=timedelta(0))


class RetentionSettings(_Section):
    """How long articles are kept (``monitor prune`` and its daily job)."""

    older_than: Duration = timedelta(days=90)
    matched_older_than: Duration = timedelta(days=365)
    prune_at: Annotated[str, AfterValidator(_local_time)] = "03:30"
    enabled: bool = True


class FilesSettings(_Section):
    """Companion configuration files, relative to the directory of ``monitor.toml``."""

    feeds: Path = Path("feeds.opml")
    topics: Path = Path("topics.yaml")
    subscriptions: Path = Path("subscriptions.yaml")
    templates: Path = Path("templates")


class Settings(BaseSettings):
    """Every setting monitor reads; see the README's configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    database: DatabaseSettings = DatabaseSettings()
    fetch: FetchSettings = FetchSettings()
    pages: PagesSettings = PagesSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    mail: MailSettings = MailSettings()
    channels: ChannelsSettings = ChannelsSettings()
    digest: DigestSettings = DigestSettings()
    topics: TopicsSettings = TopicsSettings()
    web: WebSettings = WebSettings()
    reports: ReportsSettings = ReportsSettings()
    stories: StoriesSettings = StoriesSettings()
    ingest: IngestSettings = IngestSettings()
    retention: RetentionSettings = RetentionSettings()
    files: FilesSettings = FilesSettings()
    _config_dir: Path = PrivateAttr(default=Path("config"))
    _config_path: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables win over the values read from the TOML file."""
        return (env_settings, init_settings)

    def config_file(self, name: Path) -> Path:
        """Resolve a companion file name against the configuration directory."""
        return name if name.is_absolute() else self._config_dir / name

    @property
    def config_dir(self) -> Path:
        """The directory that holds ``monitor.toml`` and its companion files."""
        return self._config_dir

    @property
    def config_path(self) -> Path | None:
        """The settings file these settings were read from (None: made in code)."""
        return self._config_path


def load_settings(path: Path | None = None) -> Settings:
    """Read settings from ``path`` (or ``$MONITOR_CONFIG``, or ``config/monitor.toml``) and env."""
    explicit = path is not None or CONFIG_ENV in os.environ
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    if config_path.is_dir():
        config_path = config_path / "monitor.toml"
    data: dict[str, Any] = {}
    if config_path.exists():
        data = _read_toml(config_path)
    elif explicit:
        raise ConfigError(str(config_path), "configuration file not found")
    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise _config_error(exc, config_path, text) from None
    except SettingsError as exc:  # a MONITOR_* value its parser could not read at all
        raise _environment_error(exc) from None
    settings._config_dir = config_path.parent
    settings._config_path = config_path
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 puts the position only in the text: "... (at line 3, column 7)".
        where = re.search(r"\s*\(at line (\d+), column \d+\)$", str(exc))
        message = str(exc)[: where.start()] if where else str(exc)
        line = int(where.group(1)) if where else None
        raise ConfigError(str(path), f"not valid TOML: {message}", line=line) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None


def _config_error(exc: ValidationError, path: Path, text: str) -> ConfigError:
    """Turn pydantic's first complaint into one line naming the variable or file, key and line."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    # The variable that set this key, or the list or section the key is in (fetch.allow_networks.0
    # comes from MONITOR_FETCH_ALLOW_NETWORKS).
    for end in range(len(loc), 0, -1):
        env_name = ENV_PREFIX + "_".join(loc[:end]).upper()
        if env_name in os.environ:
            return ConfigError(f"environment variable {env_name}", message)
    key = ".".join(loc)
    return ConfigError(str(path), f"{key}: {message}", line=_toml_key_line(text, loc))


def _environment_error(exc: SettingsError) -> ConfigError:
    """A section set as one variable (``MONITOR_MAIL='...'``) that is not JSON, as one line."""
    found = re.search(r'field "(\w+)"', str(exc))
    section = ENV_PREFIX + (found.group(1).upper() if found else "")
    names = sorted(name for name in os.environ if name == section or name.startswith(section + "_"))
    if names:
        return ConfigError(
            f"environment variable {names[0]}",
            f"not valid JSON (or set one key at a time, as {section}_<KEY>)",
        )
    return ConfigError("environment", str(exc))


def _toml_key_line(text: str, loc: tuple[str, ...]) -> int | None:
    """Find the line that sets ``loc`` (``[section]`` then ``key = ...``) in TOML text."""
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[([^\[\]]+)\]", line)
        if header:
            table = tuple(part.strip() for part in header.group(1).split("."))
            if table == loc:
                return number
            continue
        assignment = re.match(r"^([A-Za-z0-9_\-.\"']+)\s*=", line)
        if assignment:
            key = tuple(part.strip().strip("\"'") for part in assignment.group(1).split("."))
            if table + key == loc[: len(table + key)] and len(table + key) >= len(loc):
                return number
    return None
