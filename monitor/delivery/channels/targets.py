"""Channel URLs: which kind a URL is, checking it, masking its secrets, and signing secrets.

An ``http`` or ``https`` URL is a webhook of our own (a signed JSON POST); any other scheme is
an Apprise URL (``slack://``, ``tgram://``, ``ntfy://``, ``json://``, ...), limited to the
services Apprise reaches over HTTP (``APPRISE_SCHEMES``): the others (e-mail, MQTT, XMPP, IRC,
syslog, desktop notifications) would open connections the address guard does not see.
URLs and secrets are credentials: what lists and logs show is ``shown_url`` and
``shown_secret``, never the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.errors import UsageError
from monitor.models import ChannelKind
from monitor.sources.admission import MAX_URL_BYTES, HostResolver, refused_host, system_addresses
from monitor.sources.guard import AddressPolicy

SECRET_PREFIX = "whsec_"
# Standard Webhooks: a symmetric secret is 24 to 64 random bytes, base64 after "whsec_".
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64

# Apprise services that talk HTTP (through requests, so through the guard), by scheme. Chat
# and push services first; json/form/xml post to any URL.
APPRISE_SCHEMES = frozenset(
    {
        "slack", "workflow", "workflows", "msteams", "tgram", "matrix", "matrixs", "ntfy",
        "ntfys", "discord", "mmost", "mmosts", "rocket", "rockets", "zulip", "gchat",
        "gotify", "gotifys", "pover", "pbul", "json", "jsons", "form", "forms", "xml", "xmls",
        "signal", "signals", "apprise", "apprises", "pagerduty", "opsgenie", "wxteams",
        "webex", "lark", "feishu", "dingtalk", "wecombot", "nctalk", "nctalks", "ncloud",
        "nclouds", "hassio", "hassios", "ifttt", "bark", "barks", "revolt", "ryver", "flock",
        "twist", "zcliq", "cliq", "spike", "signl4", "splunk", "victorops", "squadcast",
        "pagertree", "ilert", "line", "viber", "threema", "mastodon", "mastodons", "toot",
        "toots", "misskey", "misskeys", "bluesky", "bsky", "psafer", "psafers", "chanify",
    }
)  # fmt: skip
# Apprise services whose URL names any server (and a path that may hold a token): the server
# is checked when the channel is added, and the path is masked like a webhook's.
CUSTOM_HOST_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """A checked channel URL: its kind, the URL itself, and how it may be shown."""

    kind: ChannelKind
    url: str
    shown_url: str

    @property
    def url_hash(self) -> str:
        """The SHA-256 of the URL, the channel's identity per subscriber."""
        return hashlib.sha256(self.url.encode()).hexdigest()


def url_kind(url: str) -> ChannelKind:
    """A webhook for http(s) URLs, Apprise for every other scheme."""
    scheme = urlsplit(url.strip()).scheme.lower()
    return ChannelKind.WEBHOOK if scheme in ("http", "https") else ChannelKind.APPRISE


def check_channel_url(
    url: str,
    policy: AddressPolicy | None,
    resolve: HostResolver = system_addresses,
) -> ChannelTarget:
    """``url`` checked as a channel: well formed, a service we send to, and not an address the
    guard refuses (a name that does not resolve now is let through: every connection is
    checked anyway; no ``policy``: the address is not checked). UsageError saying what is
    wrong, without the URL's secrets."""
    url = url.strip()
    if not url:
        raise UsageError("channel URL is empty")
    if len(url.encode()) > MAX_URL_BYTES:
        raise UsageError(f"channel URL too long: over {MAX_URL_BYTES} bytes")
    if url_kind(url) is ChannelKind.WEBHOOK:
        return _webhook_target(url, policy, resolve)
    return _apprise_target(url, policy, resolve)


def _webhook_target(url: str, policy: AddressPolicy | None, resolve: HostResolver) -> ChannelTarget:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise UsageError(f"not a valid webhook URL: {mask_http_url(url)}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"webhook URL has no host: {mask_http_url(url)}")
    shown = mask_http_url(url)
    _refuse_host(parsed.host, shown, policy, resolve)
    return ChannelTarget(ChannelKind.WEBHOOK, url, shown)


def _apprise_target(url: str, policy: AddressPolicy | None, resolve: HostResolver) -> ChannelTarget:
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise UsageError(
            "not a channel URL: give an http(s) webhook or an Apprise URL such as slack://..."
        )
    if scheme not in APPRISE_SCHEMES:
        raise UsageError(
            f"channel scheme {scheme}:// is not supported: use a webhook (https://...) or an "
            "Apprise service reached over HTTP (slack, msteams/workflows, tgram, matrix, ntfy, "
            "discord, mmost, json, form, ...)"
        )
    plugin = instantiate_apprise(url)
    if plugin is None:
        raise UsageError(f"not a valid Apprise URL for {scheme}:// (see the Apprise wiki)")
    shown = shown_apprise_url(url, plugin)
    host = str(getattr(plugin, "host", "") or "")
    if host and ("." in host or ":" in host or host.lower() == "localhost"):
        _refuse_host(host, shown, policy, resolve)
    return ChannelTarget(ChannelKind.APPRISE, url, shown)


def _refuse_host(
    host: str, shown: str, policy: AddressPolicy | None, resolve: HostResolver
) -> None:
    if policy is None:
        return
    reason = refused_host(host, policy, resolve)
    if reason is not None:
        raise UsageError(f"channel URL refused: {shown}: {reason}")


def instantiate_apprise(url: str) -> Any:
    """The Apprise plugin object for ``url``, or None when Apprise cannot read it."""
    apprise = _apprise()
    asset = apprise.AppriseAsset(async_mode=False)
    return apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)


@cache
def _apprise() -> Any:
    """Apprise, imported on first use: its import and plugin scan take some 0.5 s."""
    import apprise

    return apprise


def shown_apprise_url(url: str, plugin: Any) -> str:
    """An Apprise URL as Apprise itself masks it (tokens as ``T...2``), without its options;
    a json/form/xml URL is masked like a webhook, since its path may hold a token."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in CUSTOM_HOST_SCHEMES:
        return mask_http_url(url)
    private = str(plugin.url(privacy=True))
    return private.split("?", 1)[0]


def mask_http_url(url: str) -> str:
    """``scheme://host[:port]/…``: the path, query and user info can hold tokens."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a malformed URL)"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")
    rest = parts.path.strip("/") or parts.query
    return shown + ("/…" if rest else "/")


def new_secret() -> str:
    """A new signing secret in Standard Webhooks' form: ``whsec_`` and base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def check_secret(secret: str) -> str:
    """``secret`` if it is ``whsec_`` and base64 of 24 to 64 bytes (UsageError otherwise)."""
    secret = secret.strip()
    hint = (
        "channel secret: use whsec_ and base64 of 24 to 64 random bytes, as "
        "`monitor channels rotate-secret` makes (or give none: one is made)"
    )
    if not secret.startswith(SECRET_PREFIX):
        raise UsageError(hint)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(hint) from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise UsageError(hint)
    return secret


def shown_secret(secret: str | None) -> str:
    """A secret as lists show it: its prefix and last four characters."""
    if not secret:
        return ""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def redact(text: str, *values: str | None) -> str:
    """``text`` with every credential-like part of ``values`` (a URL, a secret) masked, so an
    error message quoting a URL or a token (Apprise's do) never shows it."""
    for piece in sorted(_secret_pieces(values), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def _secret_pieces(values: tuple[str | None, ...]) -> set[str]:
    pieces: set[str] = set()
    for value in values:
        if not value:
            continue
        pieces.add(value)
        try:
            parts = urlsplit(value)
        except ValueError:
            continue
        candidates = [parts.password, parts.username, parts.query, parts.netloc]
        candidates += parts.path.split("/")
        candidates += [pair.partition("=")[2] for pair in parts.query.split("&")]
        # Hosts of services whose "host" is a token (slack://TOKEN/...) are masked too, but
        # not a public host name: the answer would say nothing then.
        pieces.update(c for c in candidates if c and len(c) >= 6 and not _is_host(c, parts))
    return pieces


def _is_host(candidate: str, parts: Any) -> bool:
    return candidate == parts.netloc and "." in candidate and "@" not in candidate


# Credential-like pieces of the channel URLs and secrets this process has sent to: the HTTP
# libraries' own log lines (httpx at INFO, urllib3 at DEBUG: request URLs, a bot token in a
# path) are redacted of them, whatever level ``-v`` sets.
_SENT_SECRETS: set[str] = set()
# A logger's filters apply to its own records only, not its children's: each one is named.
_REDACTED_LOGGERS = (
    "httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
    "urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager", "urllib3.util.retry",
    "requests", "apprise",
)  # fmt: skip


class _RedactSecrets(logging.Filter):
    """Masks every registered credential in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without credentials; keep the record."""
        if _SENT_SECRETS:
            message = record.getMessage()
            masked = redact(message, *_SENT_SECRETS)
            if masked != message:
                record.msg, record.args = masked, ()
        return True


_FILTER = _RedactSecrets()


def guard_log(*values: str | None) -> None:
    """Keep ``values`` (a channel's URL, its secret) out of every HTTP library's log."""
    _SENT_SECRETS.update(piece for piece in _secret_pieces(values))
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
