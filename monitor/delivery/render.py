"""Render a digest to an e-mail: subject, plain text and HTML from Jinja2 templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)

from monitor.delivery.digest import Digest
from monitor.errors import ConfigError

MAX_SUBJECT_TOPICS = 3


def build_environment(override_dir: Path | None = None) -> Environment:
    """Templates shipped in the package, each overridable by a file of the same name."""
    loaders: list[FileSystemLoader | PackageLoader] = []
    if override_dir is not None and override_dir.is_dir():
        loaders.append(FileSystemLoader(override_dir))
    loaders.append(PackageLoader("monitor", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        # Feed text is untrusted: every .html template escapes by default.
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = _localtime
    env.filters["safe_url"] = safe_url
    return env


def safe_url(url: str) -> str:
    """``url`` when it is http(s); anything else (``javascript:``, ``data:``) becomes empty."""
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else ""


def _localtime(value: datetime | None, zone: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest as subject, text and HTML."""

    subject: str
    text: str
    html: str


def digest_subject(digest: Digest, prefix: str) -> str:
    """One line: how many articles, on which topics."""
    names = [section.name for section in digest.sections]
    shown = ", ".join(names[:MAX_SUBJECT_TOPICS])
    if len(names) > MAX_SUBJECT_TOPICS:
        shown += f" and {len(names) - MAX_SUBJECT_TOPICS} more"
    noun = "article" if digest.total == 1 else "articles"
    return _one_line(f"{prefix} {digest.total} new {noun}: {shown}".strip())


def render_digest(env: Environment, digest: Digest, *, subject_prefix: str) -> RenderedDigest:
    """Render both bodies of a digest from ``digest.txt`` and ``digest.html``."""
    subject = digest_subject(digest, subject_prefix)
    context = {"digest": digest, "subject": subject}
    return RenderedDigest(
        subject=subject,
        text=_render(env, "digest.txt", context),
        html=_render(env, "digest.html", context),
    )


def _render(env: Environment, name: str, context: dict[str, object]) -> str:
    """Render a template; a broken (overriding) template is a configuration error."""
    try:
        return env.get_template(name).render(context)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            exc.filename or name, f"template error: {exc.message}", line=exc.lineno
        ) from None
    except TemplateError as exc:
        raise ConfigError(f"template {name}", f"cannot render: {exc}") from None


def build_message(
    rendered: RenderedDigest, digest: Digest, *, from_address: str, from_name: str
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with the delivery's Message-ID."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = rendered.subject
    message["From"] = _address(from_name, from_address)
    message["To"] = _address(digest.name, digest.email)
    message["Date"] = format_datetime(digest.created_at)
    message["Message-ID"] = digest.message_id
    # RFC 3834: a machine wrote this; auto-responders should stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps every line short: some servers refuse lines over 998 octets.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


def _address(name: str, address: str) -> Address:
    local, _, domain = address.partition("@")
    return Address(display_name=_one_line(name), username=local, domain=domain)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def address_domain(address: str) -> str:
    """The domain part of an e-mail address."""
    return address.rpartition("@")[2]
