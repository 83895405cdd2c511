"""Render a digest to an e-mail: subject, plain text and HTML from Jinja2 templates.

The templates ship in ``monitor/templates/``; a file of the same name in the configuration's
``templates/`` directory replaces one. Every template is compiled and tried on a sample digest
when a command starts (``load_templates``), so a broken override is reported then, with its
file and line, and never at send time.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime
from functools import cache, lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)

from monitor.delivery.digest import Digest, DigestArticle, DigestSection
from monitor.delivery.tokens import (
    load_secret_key,
    make_digest_token,
    make_manage_token,
    make_unsubscribe_token,
)
from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.text import shorten
from monitor.untrusted import strip_controls

MAX_SUBJECT_TOPICS = 3
# A subject longer than this is cut (an instant alert is titled by its article's title, and
# one feed's title was 10,000 characters); mail clients show some 60 to 100.
MAX_SUBJECT_CHARS = 200
DIGEST_TEMPLATES = ("digest_subject.txt", "digest.txt", "digest.html")

# The heading of a digest, by the frequency its period key names ("" is one sent on demand).
HEADINGS = {
    "instant": "New matches",
    "hourly": "Your hourly digest",
    "daily": "Your daily digest",
    "weekly": "Your weekly digest",
    "": "Your digest",
}

# An RFC 2047 encoded word. In feed text it is a trick: a reader decodes it into other text.
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
# Bidirectional overrides reorder what a subject line appears to say.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Remote stylesheets would mean network requests while rendering; templates inline their CSS.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False)


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
        # Compiled once: the service reloads templates itself when a file changes, and keeps
        # the previous ones when the new ones are broken (see ``load_templates``).
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = _localtime
    # Jinja's own wraps with textwrap, the slowest step of a digest; same output for prose.
    env.filters["wordwrap"] = wrap_words
    env.filters["safe_url"] = safe_url
    env.filters["shorten"] = shorten
    env.globals["headings"] = HEADINGS
    env.globals["max_subject_topics"] = MAX_SUBJECT_TOPICS
    return env


def load_templates(settings: Settings) -> Environment:
    """The configured templates, checked: a broken one is a ConfigError naming file and line
    (the channels' chat templates too)."""
    from monitor.delivery.channels.compose import check_channel_templates  # it imports this

    env = build_environment(settings.config_file(settings.files.templates))
    check_templates(env)
    check_channel_templates(env)
    return env


def check_templates(env: Environment, names: tuple[str, ...] = DIGEST_TEMPLATES) -> None:
    """Compile the digest templates and try them on sample digests, full and empty.

    Only the templates this environment renders: other front ends (the web pages) check
    their own, with their own context.
    """
    for name in names:
        try:
            env.get_template(name)
        except TemplateError as exc:
            raise template_error(exc, name) from None
    sample = _sample_digest()
    for digest in (sample, replace(sample, sections=[])):
        render_digest(env, digest, subject_prefix="[monitor]", unsubscribe_url="https://x/u/t",
                      manage_url="https://x/m/t", digest_url="https://x/d/t")  # fmt: skip


def _sample_digest() -> Digest:
    moment = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
    article = DigestArticle(
        title="Sample title",
        url="https://news.example.com/a",
        outlet="Example News",
        published_at=moment,
        first_seen_at=moment,
        excerpt="Sample excerpt with a match.",
        terms=("match",),
        title_highlights=((0, 6),),
        excerpt_highlights=((22, 27),),
    )
    return Digest(
        delivery_id=0,
        message_id="<sample@monitor.localhost>",
        email="sample@example.org",
        name="Sample",
        timezone="UTC",
        created_at=moment,
        sections=[DigestSection("sample", "Sample", [article], more=1)],
        frequency="daily",
        since=moment,
    )


def render_template(env: Environment, name: str, context: dict[str, Any]) -> str:
    """Render a template; a broken (overriding) template is a configuration error."""
    try:
        return env.get_template(name).render(context)
    except Exception as exc:  # an expression of the template failed too ({{ 1/0 }})
        raise template_error(exc, name) from None


def template_error(exc: Exception, name: str) -> ConfigError:
    """A template failure (its syntax, or an expression failing as it renders) as a
    ConfigError naming the template file and line."""
    if isinstance(exc, TemplateSyntaxError):
        return ConfigError(exc.filename or name, f"template error: {exc.message}", line=exc.lineno)
    filename, line = _template_position(exc.__traceback__)
    message = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
    return ConfigError(filename or name, f"template error: {message}", line=line)


def _template_position(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """The innermost template frame of a render error's traceback.

    Jinja rewrites the traceback so its frames point into the template source; those frames
    carry ``__jinja_exception__`` in their globals.
    """
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def wrap_words(
    text: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's ``wordwrap``: lines of at most ``width`` characters, broken at spaces."""
    del break_on_hyphens  # words break at spaces only
    lines: list[str] = []
    for paragraph in text.splitlines():
        words = paragraph.split()
        if not words:
            lines.append("")
            continue
        line: list[str] = []
        length = -1  # of the words in ``line`` and the spaces between them
        for word in words:
            while break_long_words and len(word) > width:
                if line:
                    lines.append(" ".join(line))
                    line, length = [], -1
                lines.append(word[:width])
                word = word[width:]
            if not word:  # a long word that filled its last line exactly
                continue
            if length + 1 + len(word) <= width:
                line.append(word)
                length += 1 + len(word)
            else:
                lines.append(" ".join(line))
                line, length = [word], len(word)
        if line:
            lines.append(" ".join(line))
    return (wrapstring or "\n").join(lines)


def safe_url(url: str) -> str:
    """``url`` when it is http(s); anything else (``javascript:``, ``data:``) becomes empty."""
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else ""


def _localtime(value: datetime | None, zone: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def header_text(text: str) -> str:
    """Feed or user text made safe for a header: one line, no control characters, no
    encoded words; non-ASCII is left for the policy to encode properly."""
    text = _ENCODED_WORD.sub("", text.translate(_BIDI_CONTROLS))
    if not text.isprintable():  # printable text has no control character to look for
        # Whitespace controls (CR, LF, tab, NEL, U+2028) become spaces; other controls vanish.
        text = "".join(
            c for c in text if c.isspace() or unicodedata.category(c) not in ("Cc", "Cs", "Co")
        )
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest as subject, text and HTML (CSS inlined)."""

    subject: str
    text: str
    html: str


def digest_subject(env: Environment, digest: Digest, prefix: str) -> str:
    """The subject from ``digest_subject.txt``: topics with counts, as one safe line of at
    most MAX_SUBJECT_CHARS characters."""
    context = {"digest": digest, "prefix": prefix}
    return shorten(header_text(render_template(env, "digest_subject.txt", context)),
                   MAX_SUBJECT_CHARS)  # fmt: skip


def render_digest(
    env: Environment,
    digest: Digest,
    *,
    subject_prefix: str,
    unsubscribe_url: str = "",
    manage_url: str = "",
    digest_url: str = "",
) -> RenderedDigest:
    """Render the subject and both bodies of a digest, inlining the HTML's CSS.

    ``digest_url`` is the page listing every story of the digest, linked where a section
    had more stories than the e-mail lists.
    """
    subject = digest_subject(env, digest, subject_prefix)
    context = {"digest": digest, "subject": subject, "unsubscribe_url": unsubscribe_url,
               "manage_url": manage_url, "digest_url": digest_url}  # fmt: skip
    html = render_template(env, "digest.html", context)
    # Feed text stored before the parse edge cleaned it: no control, escape or bidi override
    # reaches a mail reader, whatever a template prints.
    return RenderedDigest(
        subject=subject,
        text=strip_controls(render_template(env, "digest.txt", context)),
        html=strip_controls(_INLINER.inline(html)),
    )


@dataclass(frozen=True, slots=True)
class Letterhead:
    """What every message of this instance carries: sender, replies, links and their key."""

    from_address: str
    from_name: str
    reply_to: str
    base_url: str
    secret_key: str
    subject_prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Letterhead:
        """The sender the settings describe (making the signing key on first use)."""
        return cls(
            from_address=settings.mail.from_address,
            from_name=settings.mail.from_name,
            reply_to=settings.mail.reply_to,
            base_url=settings.web.base_url,
            secret_key=load_secret_key(settings.web),
            subject_prefix=settings.digest.subject_prefix,
        )

    def unsubscribe_links(self, digest: Digest) -> UnsubscribeLinks:
        """The signed https and mailto links that end this digest's subscriptions."""
        token = make_unsubscribe_token(
            self.secret_key, subscriber_id=digest.subscriber_id, topic_ids=digest.topic_ids
        )
        url = f"{self.base_url.rstrip('/')}/unsubscribe/{token}"
        mailto = f"mailto:{self.from_address}?subject={quote('unsubscribe ' + token)}"
        manage = make_manage_token(self.secret_key, subscriber_id=digest.subscriber_id)
        manage_url = f"{self.base_url.rstrip('/')}/manage/{manage}"
        listing = make_digest_token(
            self.secret_key, delivery_id=digest.delivery_id, subscriber_id=digest.subscriber_id
        )
        digest_url = f"{self.base_url.rstrip('/')}/digests/{listing}"
        return UnsubscribeLinks(url=url, mailto=mailto, manage=manage_url, digest=digest_url)


@dataclass(frozen=True, slots=True)
class UnsubscribeLinks:
    """RFC 2369 / RFC 8058 unsubscribe targets of one message."""

    url: str
    mailto: str
    # The subscriber's self-service page (topics, schedule, time zone): not an RFC 2369 target.
    manage: str = ""
    # The page listing every story of this digest, those the e-mail had no room for too.
    digest: str = ""

    @property
    def one_click(self) -> bool:
        """RFC 8058 one-click applies to an https URL only."""
        return self.url.lower().startswith("https://")


@dataclass(frozen=True, slots=True)
class ComposedDigest:
    """A digest rendered and wrapped as the message that goes out."""

    rendered: RenderedDigest
    message: EmailMessage


def compose_digest(env: Environment, digest: Digest, letterhead: Letterhead) -> ComposedDigest:
    """Render a digest and build its message with every header, exactly as it is sent."""
    links = letterhead.unsubscribe_links(digest)
    rendered = render_digest(
        env,
        digest,
        subject_prefix=letterhead.subject_prefix,
        unsubscribe_url=links.url,
        manage_url=links.manage,
        digest_url=links.digest,
    )
    message = build_message(
        rendered,
        digest,
        from_address=letterhead.from_address,
        from_name=letterhead.from_name,
        reply_to=letterhead.reply_to,
        unsubscribe=links,
    )
    return ComposedDigest(rendered, message)


class _UnfoldedHeader(UnstructuredHeader, BaseHeader):
    """A header written on one line, whatever policy generates the message.

    The standard folder splits a long URL into RFC 2047 encoded words, which mail clients do
    not decode inside ``<...>``: the unsubscribe link would be broken. The header object
    folds itself, so this holds even when the SMTP client flattens the message with its own
    policy (aiosmtplib uses ``email.policy.SMTP``).
    """

    def fold(self, *, policy: Policy) -> str:
        """The header as one line (its value is ASCII by construction)."""
        return f"{self.name}: {self}{policy.linesep}"


class _HeaderClasses(HeaderRegistry):
    """The email package's registry, remembering the class it makes for each header name (it
    builds a new one on every header set, a good part of a digest's time)."""

    @cache  # noqa: B019 - one registry for the life of the process
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


_HEADERS = _HeaderClasses()
for _name in ("list-unsubscribe", "list-id"):
    _HEADERS.map_to_type(_name, _UnfoldedHeader)
DIGEST_POLICY = SMTP.clone(header_factory=_HEADERS)


def build_message(
    rendered: RenderedDigest,
    digest: Digest,
    *,
    from_address: str,
    from_name: str,
    reply_to: str = "",
    unsubscribe: UnsubscribeLinks | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with the delivery's Message-ID."""
    message = EmailMessage(policy=DIGEST_POLICY)
    message["Subject"] = header_text(rendered.subject)
    sender, replies, list_id = _sender_headers(from_name, from_address, reply_to)
    message["From"] = sender
    message["Reply-To"] = replies
    message["To"] = _address(digest.name, digest.email)
    message["Date"] = format_datetime(digest.created_at)
    message["Message-ID"] = digest.message_id
    # RFC 3834: a machine wrote this; auto-responders should stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message["List-Id"] = list_id
    if unsubscribe is not None:
        message["List-Unsubscribe"] = f"<{_ascii(unsubscribe.url)}>, <{_ascii(unsubscribe.mailto)}>"
        if unsubscribe.one_click:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Quoted-printable keeps every line short: some servers refuse lines over 998 octets.
    message["MIME-Version"] = _HEADER["MIME-Version"]
    message["Content-Type"] = _HEADER["Content-Type"]
    message.attach(_text_part(rendered.text, "plain"))
    message.attach(_text_part(rendered.html, "html"))
    return message


def build_report_message(
    *,
    subject: str,
    text: str,
    html: str,
    to_address: str,
    from_address: str,
    from_name: str,
    reply_to: str,
    message_id: str,
    created_at: datetime,
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) to a reviewer: no list headers, as
    reviewers are named in the settings, not subscribed."""
    message = EmailMessage(policy=DIGEST_POLICY)
    message["Subject"] = header_text(subject)
    sender, replies, _ = _sender_headers(from_name, from_address, reply_to)
    message["From"] = sender
    message["Reply-To"] = replies
    message["To"] = _address("", to_address)
    message["Date"] = format_datetime(created_at)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = _HEADER["MIME-Version"]
    message["Content-Type"] = _HEADER["Content-Type"]
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _text_part(text: str, subtype: str) -> EmailMessage:
    """A UTF-8 text part in quoted-printable, encoded by binascii (in C: the email package's
    encoder in Python took a fifth of the time of a digest)."""
    part = EmailMessage(policy=DIGEST_POLICY)
    part["Content-Type"] = _HEADER[subtype]
    part["Content-Transfer-Encoding"] = _HEADER["Content-Transfer-Encoding"]
    # Ending in a line break, as the email package's own encoder does.
    body = text if text.endswith("\n") else text + "\n"
    part.set_payload(binascii.b2a_qp(body.encode("utf-8")).decode("ascii"))
    return part


# Headers every digest shares, parsed once: the email package parses each header it is given
# (a parsed one it takes as it is), and parsing was a good part of the time of a digest.
_HEADER = {
    key: DIGEST_POLICY.header_factory(name, value)
    for key, name, value in [
        ("MIME-Version", "MIME-Version", "1.0"),
        ("Content-Type", "Content-Type", "multipart/alternative"),
        ("plain", "Content-Type", 'text/plain; charset="utf-8"'),
        ("html", "Content-Type", 'text/html; charset="utf-8"'),
        ("Content-Transfer-Encoding", "Content-Transfer-Encoding", "quoted-printable"),
    ]
}


@lru_cache(maxsize=16)
def _sender_headers(from_name: str, from_address: str, reply_to: str) -> tuple[Any, Any, Any]:
    """From, Reply-To and List-Id, parsed once per sender (they are the same on every digest)."""
    factory = DIGEST_POLICY.header_factory
    sender = _address(from_name, from_address)
    replies = _address("", reply_to) if reply_to else sender
    # RFC 2919: one list per instance, so people can filter on it.
    list_id = f"{_list_name(from_name)} <digest.{_ascii_domain(from_address)}>"
    return (
        factory("From", str(sender)),
        factory("Reply-To", str(replies)),
        factory("List-Id", list_id),
    )


def _address(name: str, address: str) -> Address:
    local, _, domain = address.partition("@")
    return Address(display_name=header_text(name), username=local, domain=domain)


def _list_name(from_name: str) -> str:
    # The phrase of List-Id is ASCII here: the header is not folded, so not encoded either.
    name = header_text(from_name).encode("ascii", "ignore").decode()
    name = re.sub(r'[<>"\\]', "", name).strip() or "monitor"
    return f'"{name} digests"'


def _ascii_domain(address: str) -> str:
    try:
        domain = address_domain(address).encode("idna").decode("ascii").lower()
    except UnicodeError:
        domain = ""
    return domain or "monitor.localhost"


def _ascii(url: str) -> str:
    """A URL with anything outside printable ASCII percent-encoded, so it fits a header."""
    return quote(header_text(url), safe="!#$%&'()*+,-./:;=?@[]_~")


def address_domain(address: str) -> str:
    """The domain part of an e-mail address."""
    return address.rpartition("@")[2]
