"""What a channel is sent: a short chat message, or a webhook's JSON, made from a digest.

Chat messages come from templates, one per format: ``chat.md`` (Markdown: Slack, Discord,
Matrix, Teams, ...), ``chat.html`` (Telegram) and ``chat.txt`` (ntfy and push services), with
``chat_title.txt`` for the title. A file of the same name (or of a channel's own template name)
in ``config/templates/`` replaces one, as for the e-mail templates. Every value a chat template
prints is escaped for its format by the environment itself (``finalize``), so an override
cannot forget to; ``url`` marks a link as one (http(s) only, percent-encoded where it would
break out of a link).

A webhook's body is the documented payload (``webhook_payload``, ``schema_version`` 1),
serialised compactly; a channel may name a ``.json`` template instead, rendered with every
printed value JSON-encoded and checked to be JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from jinja2 import Environment, TemplateError
from markupsafe import Markup
from markupsafe import escape as html_escape

from monitor.delivery.channels.escape import escape_for, escape_text
from monitor.delivery.digest import Digest, DigestSection, channel_period
from monitor.delivery.render import (
    HEADINGS,
    MAX_SUBJECT_CHARS,
    _sample_digest,
    render_template,
    safe_url,
    template_error,
)
from monitor.errors import ConfigError
from monitor.text import shorten

SCHEMA_VERSION = 1
# Chat formats, the file extension of their template, and the escaping of their values.
CHAT_EXTENSIONS = {"markdown": "md", "html": "html", "text": "txt"}
CHAT_TEMPLATE = "chat"
# Characters that would end a link in Markdown or an attribute in HTML, percent-encoded.
_URL_SAFE = "/:?#=&%+,;@!$*~'._-"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A chat message: its title (plain text), its body in ``format``."""

    title: str
    body: str
    format: str


def link_url(url: str, format_name: str = "markdown") -> Markup:
    """``url`` as a link target: empty unless http(s), percent-encoded where a character
    would end the link (space, brackets, quotes, angle brackets, backticks), and
    HTML-escaped for an HTML attribute."""
    safe = safe_url(url.strip())
    quoted = quote(safe, safe=_URL_SAFE) if safe else ""
    return Markup(html_escape(quoted)) if format_name == "html" else Markup(quoted)


def _finalizer(format_name: str) -> Callable[[Any], Any]:
    """Every printed value escaped for ``format_name``; Markup (``url``, other templates'
    output) is already in the format and printed as it is."""
    escape = escape_for(format_name)

    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, Markup):
            return value
        return Markup(escape(str(value)))

    return finalize


def _json_finalize(value: Any) -> Any:
    """Every printed value of a JSON template is a JSON value."""
    if isinstance(value, Markup):
        value = str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


_OVERLAYS: WeakKeyDictionary[Environment, dict[str, Environment]] = WeakKeyDictionary()


def channel_environment(env: Environment, format_name: str) -> Environment:
    """The templates of ``env`` (the same files and overrides) as a chat format renders them:
    values escaped for ``format_name`` ("markdown", "html", "text", or "json")."""
    known = _OVERLAYS.setdefault(env, {})
    if format_name not in known:
        finalize = _json_finalize if format_name == "json" else _finalizer(format_name)
        # A cache of its own: templates compile with this finalize, never the parent's.
        overlay = env.overlay(finalize=finalize, autoescape=False, cache_size=100)
        # An overlay shares its parent's dictionaries; these are the overlay's own.
        overlay.filters = dict(env.filters)
        overlay.globals = dict(env.globals)
        for name in ("markdown", "html", "text", "slack"):
            overlay.filters[name] = _escape_filter(name)
        overlay.filters["url"] = lambda url: link_url(str(url), format_name)
        overlay.globals["max_subject_chars"] = MAX_SUBJECT_CHARS
        known[format_name] = overlay
    return known[format_name]


def _escape_filter(name: str) -> Callable[[Any], Markup]:
    escape = escape_for(name)
    return lambda value: Markup(escape(str(value)))


def trim_digest(digest: Digest, max_stories: int) -> Digest:
    """The digest with at most ``max_stories`` stories listed, in its order; the others are
    counted under their topic, as the e-mail counts what does not fit."""
    left = max_stories
    sections = []
    for section in digest.sections:
        listed = section.articles[: max(left, 0)]
        cut = section.articles[len(listed) :]
        left -= len(listed)
        sections.append(
            replace(
                section,
                articles=listed,
                more=section.more + len(cut),
                more_articles=section.more_articles + sum(1 + len(a.also) for a in cut),
            )
        )
    return replace(digest, sections=sections)


def chat_template_names(base: str, format_name: str) -> tuple[str, str]:
    """The title and body templates of a chat format: ``chat_title.txt``, ``chat.md``."""
    return f"{base}_title.txt", f"{base}.{CHAT_EXTENSIONS[format_name]}"


def render_chat(
    env: Environment,
    digest: Digest,
    *,
    format_name: str,
    prefix: str,
    digest_url: str,
    max_stories: int,
    template: str = "",
) -> ChatMessage:
    """The chat message of a digest in ``format_name``: its title, and its body listing the
    first ``max_stories`` stories with the rest counted and linked to the digest's page."""
    base = template or CHAT_TEMPLATE
    title_name, body_name = chat_template_names(base, format_name)
    trimmed = trim_digest(digest, max_stories)
    context = {"digest": trimmed, "prefix": prefix, "digest_url": digest_url,
               "headings": HEADINGS, "format": format_name}  # fmt: skip
    title = render_template(channel_environment(env, "text"), title_name, context)
    title = shorten(escape_text(title), MAX_SUBJECT_CHARS)
    body = render_template(
        channel_environment(env, format_name), body_name, {**context, "title": title}
    )
    return ChatMessage(title=title, body=body.strip() + "\n", format=format_name)


def webhook_payload(
    digest: Digest,
    *,
    key: str,
    period_key: str,
    channel_id: int,
    channel_name: str,
    digest_url: str,
    kind: str = "digest",
) -> dict[str, Any]:
    """The documented JSON payload of a webhook (``schema_version`` 1; see the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "type": kind,
        "id": key,
        "idempotency_key": key,
        "created_at": _iso(digest.created_at),
        "period": channel_period(period_key),
        "frequency": digest.frequency,
        "since": _iso(digest.since),
        "channel": {"id": channel_id, "name": channel_name},
        "subscriber": {"email": digest.email, "name": digest.name},
        "stories": digest.total,
        "articles": digest.articles,
        "digest_url": digest_url,
        "topics": [_topic_payload(section) for section in digest.sections],
    }


def _topic_payload(section: DigestSection) -> dict[str, Any]:
    return {
        "slug": section.slug,
        "name": section.name,
        "priority": str(section.priority),
        "stories": section.stories,
        "more_stories": section.more,
        "more_articles": section.more_articles,
        "articles": [
            {
                "title": article.title,
                "url": article.url,
                "outlet": article.outlet,
                "published_at": _iso(article.published_at),
                "first_seen_at": _iso(article.first_seen_at),
                "language": article.language,
                "snippet": article.excerpt,
                "terms": list(article.terms),
                "story": {
                    "id": article.story_id,
                    "also": [{"outlet": a.outlet, "url": a.url} for a in article.also],
                },
            }
            for article in section.articles
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def webhook_body(env: Environment, payload: dict[str, Any], *, template: str = "") -> bytes:
    """The body a webhook posts: the payload as compact JSON, or a channel's own ``.json``
    template rendered with it (checked to be JSON)."""
    if not template:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    name = f"{template}.json"
    text = render_template(channel_environment(env, "json"), name, {"payload": payload})
    try:
        json.loads(text)
    except ValueError as exc:
        raise ConfigError(name, f"template error: the result is not JSON: {exc}") from None
    return text.encode()


def check_channel_templates(env: Environment, bases: tuple[str, ...] = (CHAT_TEMPLATE,)) -> None:
    """Compile the chat templates and try them on the sample digest (every format), so a
    broken override fails when a command starts, with its file and line."""
    sample = _sample_digest()
    for base in bases:
        for format_name in CHAT_EXTENSIONS:
            for name in chat_template_names(base, format_name):
                try:
                    channel_environment(env, format_name).get_template(name)
                except TemplateError as exc:
                    raise template_error(exc, name) from None
            for digest in (sample, replace(sample, sections=[])):
                render_chat(env, digest, format_name=format_name, prefix="[monitor]",
                            digest_url="https://x/d/t", max_stories=10, template=base)  # fmt: skip


def check_webhook_template(env: Environment, template: str) -> None:
    """Try a channel's ``.json`` template on the sample digest."""
    payload = webhook_payload(_sample_digest(), key="msg_sample", period_key="daily:sample",
                              channel_id=0, channel_name="sample",
                              digest_url="https://x/d/t")  # fmt: skip
    webhook_body(env, payload, template=template)
