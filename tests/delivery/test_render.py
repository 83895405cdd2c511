"""Rendering a digest: golden files, headers, hostile feed text, templates and the preview.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/delivery/test_render.py`` and
read the diff before committing it.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import aiosmtplib
import pytest
from jinja2 import Environment
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.delivery.digest import Digest, DigestArticle, DigestSection, load_digest, segments
from monitor.delivery.render import (
    Letterhead,
    build_environment,
    compose_digest,
    digest_subject,
    header_text,
    load_templates,
    render_digest,
    safe_url,
    wrap_words,
)
from monitor.delivery.tokens import read_unsubscribe_token
from monitor.errors import ConfigError
from monitor.models import Delivery, DeliveryItem, Frequency, Subscriber, Subscription
from monitor.topics.tagging import load_matcher, save_matches, tag_articles
from monitor.web.app import check_pages
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article, add_topic
from tests.utils.smtpserver import SmtpServer

GOLDEN = Path(__file__).parent / "golden"
FROM_ADDRESS = "monitor@example.net"
SECRET = "test-secret-key"
LETTERHEAD = Letterhead(
    from_address=FROM_ADDRESS,
    from_name="monitor",
    reply_to="",
    base_url="https://monitor.example.net/",
    secret_key=SECRET,
    subject_prefix="[monitor]",
)


def article(**changes: object) -> DigestArticle:
    base = DigestArticle(
        title="Did Putin Back Kamala Harris For The 2024 Election? Here’s What It Could Mean",
        url="https://news.example.com/world/putin-harris",
        outlet="Example News",
        published_at=datetime(2024, 9, 6, 7, 30, tzinfo=UTC),
        first_seen_at=datetime(2024, 9, 6, 8, 0, tzinfo=UTC),
        excerpt=(
            "Officials warned of election interference as « troll farms » spread claims about "
            "the vote in Pennsylvania and Georgia, according to researchers who track the "
            "campaigns and their networks of accounts across platforms."
        ),
        terms=("election interference", "meddl* in the election"),
        language="en",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def marked(text: str, *words: str) -> tuple[tuple[int, int], ...]:
    """The character ranges of ``words`` (each found once) in ``text``."""
    return tuple((text.index(word), text.index(word) + len(word)) for word in words)


def highlighted() -> DigestArticle:
    """The base article with its matched words marked, as a tagged match gives them."""
    base = article()
    return replace(
        base,
        title_highlights=marked(base.title, "2024 Election"),
        excerpt_highlights=marked(base.excerpt, "election interference", "troll farms"),
    )


def fixed_digest() -> Digest:
    return Digest(
        delivery_id=7,
        message_id="<digest.0123456789abcdef01234567@example.net>",
        email="ada@example.org",
        name="Ada Analyst",
        timezone="Europe/Berlin",
        created_at=datetime(2024, 9, 9, 6, 0, tzinfo=UTC),
        sections=[
            DigestSection(
                "election-interference",
                "Election interference",
                [
                    highlighted(),
                    article(
                        title="Élection : observers fear meddling",
                        title_highlights=marked("Élection : observers fear meddling", "meddling"),
                        url="https://presse.example.fr/élection?id=5&x=1",
                        outlet="La Presse",
                        published_at=None,
                        excerpt="",
                        terms=("meddl* in the election",),
                    ),
                ],
            ),
            DigestSection(
                "russian-disinformation",
                "Russian disinformation",
                [
                    article(
                        title="Troll farms <b>target</b> voters",
                        terms=("troll farm*",),
                        title_highlights=((0, 11),),
                    )
                ],
                more=2,
            ),
        ],
    )


def digest_with(**changes: object) -> Digest:
    return replace(fixed_digest(), **changes)  # type: ignore[arg-type]


def message_for(digest: Digest, letterhead: Letterhead = LETTERHEAD) -> EmailMessage:
    return compose_digest(build_environment(), digest, letterhead).message


def parse(wire: bytes) -> EmailMessage:
    parsed = message_from_bytes(wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def mask(wire: str) -> str:
    """The message with its Message-ID, MIME boundaries and Date replaced by fixed text."""
    text = wire.replace("\r\n", "\n")
    for boundary in set(re.findall(r'boundary="([^"]+)"', text)):
        text = text.replace(boundary, "BOUNDARY")
    text = re.sub(r"^Message-ID: .*$", "Message-ID: <MASKED>", text, flags=re.MULTILINE)
    return re.sub(r"^Date: .*$", "Date: MASKED", text, flags=re.MULTILINE)


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from {path}"


def test_text_matches_golden() -> None:
    rendered = render_digest(build_environment(), fixed_digest(), subject_prefix="[monitor]")
    assert_golden("digest.txt", rendered.text)


def test_html_matches_golden() -> None:
    rendered = render_digest(build_environment(), fixed_digest(), subject_prefix="[monitor]")
    assert_golden("digest.html", rendered.html)


def test_eml_matches_golden() -> None:
    assert_golden("digest.eml", mask(message_for(fixed_digest()).as_bytes().decode("ascii")))


def test_mask_hides_only_the_varying_parts() -> None:
    first = message_for(fixed_digest()).as_bytes().decode("ascii")
    second = message_for(digest_with(created_at=datetime(2025, 1, 1, tzinfo=UTC))).as_bytes()

    assert first != second.decode("ascii")
    assert mask(first) == mask(second.decode("ascii"))
    assert "BOUNDARY" in mask(first)


def test_message_headers_and_parts() -> None:
    message = parse(message_for(digest_with(subscriber_id=3, topic_ids=(1, 2))).as_bytes())

    assert message["Subject"] == "[monitor] Election interference (2), Russian disinformation (3)"
    assert message["From"] == "monitor <monitor@example.net>"
    assert message["Reply-To"] == "monitor <monitor@example.net>"
    assert message["To"] == "Ada Analyst <ada@example.org>"
    assert message["Message-ID"] == "<digest.0123456789abcdef01234567@example.net>"
    assert message["Date"] == "Mon, 09 Sep 2024 06:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == '"monitor digests" <digest.example.net>'
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def unsubscribe_targets(message: EmailMessage) -> list[str]:
    return re.findall(r"<([^<>]+)>", str(message["List-Unsubscribe"]))


def test_list_unsubscribe_names_the_subscriber_and_topics_in_a_signed_token() -> None:
    message = parse(message_for(digest_with(subscriber_id=3, topic_ids=(2, 1))).as_bytes())

    url, mailto = unsubscribe_targets(message)

    assert url.startswith("https://monitor.example.net/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    assert mailto == f"mailto:{FROM_ADDRESS}?subject=unsubscribe%20{token}"
    found = read_unsubscribe_token(SECRET, token)
    assert (found.subscriber_id, found.topic_ids) == (3, (1, 2))
    # The same link is in both bodies, for people whose client shows no unsubscribe button.
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert url in text.get_content()
    assert f'href="{url}"' in html.get_content()


def test_list_unsubscribe_is_never_folded_into_encoded_words(smtp_server: SmtpServer) -> None:
    long_base = "https://monitor.example.net/" + "very-long-path-segment/" * 5
    letterhead = replace(LETTERHEAD, base_url=long_base)
    message = message_for(digest_with(topic_ids=tuple(range(1, 40))), letterhead)
    expected = unsubscribe_targets(message)
    # aiosmtplib flattens with email.policy.SMTP, not the message's own policy.
    asyncio.run(aiosmtplib.send(message, hostname="127.0.0.1", port=smtp_server.port, timeout=10))

    for wire in (message.as_bytes(), smtp_server.messages[0].data):
        lines = wire.replace(b"\r\n", b"\n").split(b"\n")
        header = next(line for line in lines if line.startswith(b"List-Unsubscribe:"))
        assert b"=?" not in header
        assert re.findall(rb"<([^<>]+)>", header) == [t.encode() for t in expected]
        assert len(header) < 998
    assert expected[0].startswith(f"{long_base}unsubscribe/")


@pytest.mark.parametrize(
    ("reply_to", "base_url", "reply_header", "one_click"),
    [
        ("", "https://m.example.net", "monitor <monitor@example.net>", True),
        ("desk@example.org", "https://m.example.net", "desk@example.org", True),
        # RFC 8058: one-click POST is only offered over https.
        ("", "http://127.0.0.1:8080", "monitor <monitor@example.net>", False),
    ],
)
def test_reply_to_and_one_click(
    reply_to: str, base_url: str, reply_header: str, one_click: bool
) -> None:
    letterhead = replace(LETTERHEAD, reply_to=reply_to, base_url=base_url)

    message = parse(message_for(fixed_digest(), letterhead).as_bytes())

    assert message["Reply-To"] == reply_header
    assert unsubscribe_targets(message)[0].startswith(f"{base_url}/unsubscribe/")
    assert (message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click") is one_click


@pytest.mark.parametrize(
    ("names", "total", "prefix", "subject"),
    [
        (["Banks"], 1, "[monitor]", "[monitor] Banks (1)"),
        (["Banks", "Votes"], 2, "[monitor]", "[monitor] Banks (1), Votes (1)"),
        (["A", "B", "C"], 3, "", "A (1), B (1), C (1)"),
        (["A", "B", "C", "D", "E"], 7, "[m]", "[m] A (3), B (1), C (1) and 2 more topics"),
    ],
)
def test_subject(names: list[str], total: int, prefix: str, subject: str) -> None:
    sections = [DigestSection(n.lower(), n, [article()]) for n in names]
    sections[0].more = total - len(names)

    digest = digest_with(sections=sections)

    assert digest_subject(build_environment(), digest, prefix) == subject


@pytest.mark.parametrize(
    ("frequency", "articles", "subject"),
    [
        ("instant", 1, "[monitor] Votes: Troll farms target voters"),
        ("instant", 2, "[monitor] Votes (2)"),
        ("daily", 1, "[monitor] Votes (1)"),
        ("weekly", 1, "[monitor] Votes (1)"),
    ],
)
def test_an_instant_alert_of_one_article_is_titled_by_it(
    frequency: str, articles: int, subject: str
) -> None:
    one = article(title="Troll farms target voters")
    digest = digest_with(
        frequency=frequency, sections=[DigestSection("votes", "Votes", [one] * articles)]
    )

    assert digest_subject(build_environment(), digest, "[monitor]") == subject


@pytest.mark.parametrize(
    ("frequency", "heading"),
    [
        ("daily", "Your daily digest"),
        ("weekly", "Your weekly digest"),
        ("hourly", "Your hourly digest"),
        ("instant", "New matches"),
        ("", "Your digest"),
    ],
)
def test_nothing_new_is_a_short_notice(frequency: str, heading: str) -> None:
    since = datetime(2024, 9, 8, 6, 0, tzinfo=UTC)
    digest = digest_with(sections=[], frequency=frequency, since=since)

    rendered = render_digest(build_environment(), digest, subject_prefix="[monitor]")

    assert rendered.subject == f"[monitor] {heading}: nothing new since Sun 08 Sep, 08:00"
    assert "nothing new since Sun 08 Sep 2024, 08:00" in rendered.text
    assert "nothing new since Sun 08 Sep 2024, 08:00" in rendered.html
    assert f">{heading}</h1>" in rendered.html
    assert "<h2" not in rendered.html
    assert "==" not in rendered.text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://news.example.com/a?b=1", "https://news.example.com/a?b=1"),
        ("HTTP://news.example.com/", "HTTP://news.example.com/"),
        ("javascript:alert(1)", ""),
        ("  JavaScript:alert(1)", ""),
        ("java\tscript:alert(1)", ""),
        ("\x01javascript:alert(1)", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        ("vbscript:msgbox(1)", ""),
        ("//evil.example/x", ""),
        ("/relative/path", ""),
        ("", ""),
    ],
)
def test_safe_url(url: str, expected: str) -> None:
    assert safe_url(url) == expected


class _Markup(HTMLParser):
    """Collects the elements, attributes and text of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.marked: list[str] = []  # the text of each <mark> element
        self._in_mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((name, value or "") for name, value in attrs)
        if tag == "mark":
            self._in_mark = True
            self.marked.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_mark:
            self.marked[-1] += data


def markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser


HOSTILE_TITLE = "<script>alert(1)</script>Big news"
HOSTILE_URLS = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(document.cookie)",
    'https://x.example/"onmouseover="alert(1)',
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
]


def hostile_digest() -> Digest:
    articles = [
        article(
            title=HOSTILE_TITLE,
            url=url,
            outlet='<img src=x onerror="alert(1)">',
            excerpt="<iframe src='javascript:alert(1)'></iframe> & more",
        )
        for url in HOSTILE_URLS
    ]
    return digest_with(
        name="<b onclick=alert(1)>Ada</b>",
        sections=[DigestSection("votes", "Votes", articles)],
    )


def test_hostile_feed_text_is_not_live_markup() -> None:
    rendered = render_digest(build_environment(), hostile_digest(), subject_prefix="[monitor]")

    found = markup(rendered.html)

    assert "script" not in found.tags
    assert "iframe" not in found.tags
    assert "img" not in found.tags
    assert not [name for name, _ in found.attrs if name.startswith("on")]
    hrefs = [value for name, value in found.attrs if name in ("href", "src")]
    assert len(hrefs) == len(HOSTILE_URLS)
    for href in hrefs:
        squashed = re.sub(r"[\x00-\x20]", "", href).lower()
        assert not squashed.startswith(("javascript:", "data:", "vbscript:")), href
    # The text is still shown, as text.
    assert "".join(found.text).count(HOSTILE_TITLE) == len(HOSTILE_URLS)


def test_hostile_text_in_the_whole_message_html_part() -> None:
    message = parse(message_for(hostile_digest()).as_bytes())
    html = message.get_body(("html",))
    assert html is not None

    found = markup(html.get_content())

    assert "script" not in found.tags
    assert not [name for name, _ in found.attrs if name.startswith("on")]


INJECTION = "\r\nBcc: victim@example.com\r\nSubject: owned"


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("Ada" + INJECTION, "Votes"),
        ("Ada", "Votes" + INJECTION),
        ("Ada\nBcc: victim@example.com", "Votes\rX-Evil: 1"),
        ('Eve, "x" <evil@example.com>', "Votes"),
    ],
)
def test_crlf_in_name_and_subject_source_cannot_add_headers(name: str, topic: str) -> None:
    digest = digest_with(name=name, sections=[DigestSection("votes", topic, [article()])])

    message = parse(message_for(digest).as_bytes())

    assert len(message.get_all("Subject") or []) == 1
    assert len(message.get_all("To") or []) == 1
    assert [str(a.addr_spec) for a in message["To"].addresses] == ["ada@example.org"]
    assert message.get_all("Bcc") is None
    assert message.get_all("X-Evil") is None
    assert "\n" not in message["Subject"]
    assert "\r" not in message["Subject"]


def test_long_lines_stay_under_998_octets_on_the_wire() -> None:
    long_excerpt = " ".join(f"word{n}" for n in range(800))[:5000]
    unbroken = "x" * 3000
    digest = digest_with(
        sections=[
            DigestSection(
                "votes",
                "Votes",
                [
                    article(excerpt=long_excerpt),
                    article(title=unbroken, url=f"https://example.com/{unbroken}"),
                ],
            )
        ]
    )
    assert len(long_excerpt) == 5000

    wire = message_for(digest).as_bytes()

    lines = wire.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert b"\n" not in wire.replace(b"\r\n", b""), "every line ends in CRLF"
    message = parse(wire)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert long_excerpt in " ".join(text.get_content().split())
    assert long_excerpt in html.get_content()
    assert unbroken in html.get_content()


def test_highlights_are_marked() -> None:
    rendered = render_digest(build_environment(), fixed_digest(), subject_prefix="[monitor]")

    found = markup(rendered.html)

    assert found.marked == [
        "2024 Election",
        "election interference",
        "troll farms",
        "meddling",
        "Troll farms",
    ]
    assert "<mark" not in rendered.text


HOSTILE_SNIPPET = "… said <script>alert('the election')</script> & <b>meddling</b> …"


def test_highlights_inside_hostile_text_stay_text() -> None:
    title = "<img src=x onerror=alert(1)> Election <i>meddling</i>"
    hostile = article(
        title=title,
        excerpt=HOSTILE_SNIPPET,
        title_highlights=marked(title, "Election", "<i>meddling"),
        excerpt_highlights=marked(HOSTILE_SNIPPET, "election", "<b>meddling</b>", "& "),
    )
    digest = digest_with(sections=[DigestSection("votes", "Votes", [hostile])])

    html = render_digest(build_environment(), digest, subject_prefix="[monitor]").html
    found = markup(html)

    assert not {"script", "img", "i", "b"} & set(found.tags)
    assert not [name for name, _ in found.attrs if name.startswith("on")]
    assert found.tags.count("mark") == 5
    assert found.marked == ["Election", "<i>meddling", "election", "& ", "<b>meddling</b>"]
    # The whole text reads as it came, marks or not.
    assert title in "".join(found.text)
    assert HOSTILE_SNIPPET in "".join(found.text)
    assert "&lt;script&gt;alert('the <mark" in html


@pytest.mark.parametrize(
    ("text", "highlights", "expected"),
    [
        ("no marks", [], [("no marks", False)]),
        ("", [(0, 3)], []),
        ("a b c", [(2, 3)], [("a ", False), ("b", True), (" c", False)]),
        ("a b c", [(0, 5)], [("a b c", True)]),
        ("a b c", [(4, 5), (0, 1)], [("a", True), (" b ", False), ("c", True)]),
        # Overlapping and touching ranges are merged, never repeating text.
        ("abcdef", [(0, 3), (2, 5)], [("abc", True), ("de", True), ("f", False)]),
        ("abcdef", [(1, 4), (2, 3)], [("a", False), ("bcd", True), ("ef", False)]),
        # Ranges beyond the text (a stale match on an edited article) are cut or dropped.
        ("abc", [(1, 99)], [("a", False), ("bc", True)]),
        ("abc", [(5, 9)], [("abc", False)]),
        ("abc", [(2, 2)], [("abc", False)]),
    ],
)
def test_segments(
    text: str, highlights: list[tuple[int, int]], expected: list[tuple[str, bool]]
) -> None:
    pieces = segments(text, highlights)

    assert pieces == expected
    assert "".join(piece for piece, _ in pieces) == text


@pytest.mark.parametrize(
    ("title", "subject"),
    [
        (
            "Big news\r\nBcc: victim@example.com",
            "[monitor] Votes: Big news Bcc: victim@example.com",
        ),
        (
            "Big news\nTo: victim@example.com\n\nbody",
            "[monitor] Votes: Big news To: victim@example.com body",
        ),
        # Encoded words would be decoded by the reader into text the feed chose (here, CRLF).
        ("Big news =?utf-8?q?=0D=0ABcc=3A_victim=40example=2Ecom?=", "[monitor] Votes: Big news"),
        ("=?UTF-8?B?DQpCY2M6IHZpY3RpbUBleGFtcGxlLmNvbQ==?= Big news", "[monitor] Votes: Big news"),
        ("Big\u2028news\x85now\tand\x0bthen", "[monitor] Votes: Big news now and then"),
        ("Big\x00 news\x1b[31m\x7f", "[monitor] Votes: Big news[31m"),
        ("\u202eBig news\u2066", "[monitor] Votes: Big news"),
        ("Élection : «ingérence» 選挙", "[monitor] Votes: Élection : «ingérence» 選挙"),
        ("<script>alert(1)</script>", "[monitor] Votes: <script>alert(1)</script>"),
    ],
)
def test_hostile_titles_in_the_subject_stay_one_plain_line(title: str, subject: str) -> None:
    hostile = article(title=title, title_highlights=())
    digest = digest_with(frequency="instant", sections=[DigestSection("votes", "Votes", [hostile])])

    wire = message_for(digest).as_bytes()
    message = parse(wire)

    wire.decode("ascii")  # non-ASCII travels encoded, as SMTP without SMTPUTF8 requires
    assert message.get_all("Subject") == [subject]
    assert [str(a.addr_spec) for a in message["To"].addresses] == ["ada@example.org"]
    for header in ("Bcc", "Cc", "Resent-To", "Resent-Bcc"):
        assert message.get_all(header) is None
    assert sorted(set(message.keys())) == sorted(
        {
            "Subject", "From", "Reply-To", "To", "Date", "Message-ID", "Auto-Submitted",
            "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version",
            "Content-Type",
        }
    )  # fmt: skip
    html = message.get_body(("html",))
    assert html is not None
    found = markup(html.get_content())
    assert "script" not in found.tags
    assert not [name for name, _ in found.attrs if name.startswith("on")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("  two\r\n lines  ", "two lines"),
        ("a=?iso-8859-1?q?=E9?=b", "ab"),
        ("keep = ? and ?= apart", "keep = ? and ?= apart"),
        ("nul\x00bell\x07", "nulbell"),
        ("", ""),
    ],
)
def test_header_text(text: str, expected: str) -> None:
    assert header_text(text) == expected


# Digests stored in the database, as the outbox holds them, through load_digest and the
# whole render path: one golden message per frequency.
T0 = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)  # 08:00 in Berlin
ONE_MINUTE = timedelta(minutes=1)
STORED = [
    (
        "election-interference",
        "Officials warn of election interference before the vote",
        "Researchers tracking foreign meddling in the election say networks of accounts "
        "spread false claims about voting machines in Pennsylvania & Georgia.",
    ),
    (
        "election-interference",
        "Observers fear meddling in the election in Georgia",
        "International observers said they saw no election interference on polling day.",
    ),
    (
        "russian-disinformation",
        "Troll farms target voters with a disinformation campaign",
        "A <b>network</b> of troll farms ran a disinformation campaign, the report says.",
    ),
    (
        "russian-disinformation",
        "Élections : une campagne de désinformation russe visée",
        "Des troll farms russes auraient diffusé de fausses informations.",
    ),
]
PERIODS = {
    Frequency.DAILY: ("daily:2024-09-09@08:00", timedelta(days=1), 3),
    Frequency.WEEKLY: ("weekly:2024-W37", timedelta(weeks=1), 4),
    Frequency.INSTANT: ("instant:2024-09-09T06:00", timedelta(hours=1), 1),
}


def store_delivery(engine: Engine, frequency: Frequency, *, articles: int) -> int:
    """Topics, a subscriber, matched articles and a planned delivery of the first ``articles``."""
    period_key, period, _ = PERIODS[frequency]
    with Session(engine) as session, session.begin():
        topics = {
            "election-interference": add_topic(
                session,
                "election-interference",
                '"election interference" OR "meddl* in the election"',
            ),
            "russian-disinformation": add_topic(
                session, "russian-disinformation", '"troll farm*" OR "disinformation campaign*"'
            ),
        }
        subscriber = Subscriber(
            email="ada@example.org",
            name="Ada Analyst",
            timezone="Europe/Berlin",
            created_at=T0 - timedelta(days=30),
        )
        session.add(subscriber)
        session.flush()
        subscriber_id = subscriber.id or 0
        for topic in topics.values():
            session.add(
                Subscription(
                    subscriber_id=subscriber_id,
                    topic_id=topic.id or 0,
                    frequency=frequency,
                    created_at=T0 - timedelta(days=30),
                )
            )
        stored = []
        for number, (slug, title, summary) in enumerate(STORED[:articles]):
            seen = T0 - timedelta(minutes=40 - number)
            row = add_article(
                session, title, seen=seen, summary=summary, url=f"https://news.example.com/{number}"
            )
            row.published_at = seen - timedelta(minutes=20)
            stored.append((row, topics[slug]))
        save_matches(session, tag_articles(load_matcher(session), [a for a, _ in stored]), now=T0)
        # The stream's previous digest, and a later one of another stream that does not count.
        for key, created in ((f"{frequency}:earlier", T0 - period), ("hourly:x", T0 - ONE_MINUTE)):
            session.add(
                Delivery(
                    subscriber_id=subscriber_id,
                    period_key=key,
                    message_id=f"<{key}@example.net>",
                    created_at=created,
                )
            )
        delivery = Delivery(
            subscriber_id=subscriber_id,
            period_key=period_key,
            message_id="<digest.golden@example.net>",
            created_at=T0,
        )
        session.add(delivery)
        session.flush()
        for row, topic in stored:
            session.add(
                DeliveryItem(
                    delivery_id=delivery.id or 0,
                    subscriber_id=subscriber_id,
                    article_id=row.id or 0,
                    topic_id=topic.id or 0,
                )
            )
        return delivery.id or 0


@pytest.mark.parametrize("frequency", list(PERIODS), ids=str)
def test_stored_digest_matches_golden(engine: Engine, frequency: Frequency) -> None:
    _, period, articles = PERIODS[frequency]
    delivery_id = store_delivery(engine, frequency, articles=articles)
    with Session(engine) as session:
        digest = load_digest(session, delivery_id, max_articles=200, excerpt_chars=280)

    message = compose_digest(build_environment(), digest, LETTERHEAD).message

    assert (digest.frequency, digest.since, digest.total) == (frequency, T0 - period, articles)
    assert_golden(f"digest_{frequency}.eml", mask(message.as_bytes().decode("ascii")))
    token = unsubscribe_targets(message)[0].rsplit("/", 1)[1]
    found = read_unsubscribe_token(SECRET, token)
    assert (found.subscriber_id, found.topic_ids) == (digest.subscriber_id, (1, 2))


def test_a_stored_empty_period_renders_as_nothing_new(engine: Engine) -> None:
    delivery_id = store_delivery(engine, Frequency.WEEKLY, articles=0)
    with Session(engine) as session:
        digest = load_digest(session, delivery_id, max_articles=200, excerpt_chars=280)

    message = parse(compose_digest(build_environment(), digest, LETTERHEAD).message.as_bytes())

    assert message["Subject"] == "[monitor] Your weekly digest: nothing new since Mon 02 Sep, 08:00"
    text = message.get_body(("plain",))
    assert text is not None
    assert "Your weekly digest: nothing new since Mon 02 Sep 2024, 08:00." in text.get_content()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# Templates: overrides by name, and errors reported at start-up with file and line.


def template_settings(tmp_path: Path, files: dict[str, str]) -> ConfigWriter:
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    writer.extra_toml = f'[web]\nsecret_key_file = "{tmp_path / "secret_key"}"\n'
    templates = writer.directory / "templates"
    templates.mkdir(parents=True)
    for name, text in files.items():
        (templates / name).write_text(text, encoding="utf-8")
    return writer


def test_a_template_in_config_overrides_the_shipped_one_by_name(tmp_path: Path) -> None:
    writer = template_settings(
        tmp_path,
        {"digest_subject.txt": "{{ prefix }} News for {{ digest.name }}: {{ digest.total }}"},
    )
    env: Environment = load_templates(writer.settings())

    rendered = render_digest(env, fixed_digest(), subject_prefix="[m]")

    assert rendered.subject == "[m] News for Ada Analyst: 5"
    # The others are still the shipped ones.
    assert rendered.text == render_digest(
        build_environment(), fixed_digest(), subject_prefix="[m]"
    ).text.replace(
        "[m] Election interference (2), Russian disinformation (3)", "[m] News for Ada Analyst: 5"
    )


BROKEN_TEMPLATES = [
    ("digest.html", "<p>\n{% if %}\n</p>\n", 2, "template error: Expected an expression"),
    (
        "digest.txt",
        "a\nb\n{{ digest.total | nosuchfilter }}\n",
        3,
        "No filter named 'nosuchfilter'",
    ),
    ("digest_subject.txt", "{{ prefix }}\n{{ digest.totl }}\n", 2, "has no attribute 'totl'"),
    ("digest.html", "{% for s in digest.sections %}\n{{ s.nme }}\n{% endfor %}", 2, "'nme'"),
    ("unsubscribe.html", "{% if state == 'done' %}\n{{ ended.x.y }}{% endif %}", 2, "'x'"),
    ("footer.html", "ok\n\n{% endif %}", 3, "template error: Encountered unknown tag 'endif'"),
]
# A template included by an overriding one is checked too.
INCLUDING = {"digest.txt": "{{ subject }}\n{% include 'footer.html' %}\n"}


@pytest.mark.parametrize(("name", "text", "line", "message"), BROKEN_TEMPLATES)
def test_a_broken_template_is_a_config_error_with_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    files = {**INCLUDING, name: text} if name == "footer.html" else {name: text}
    settings = template_settings(tmp_path, files).settings()
    path = tmp_path / "config" / "templates" / name

    with pytest.raises(ConfigError) as caught:
        check_pages(load_templates(settings))

    assert caught.value.source == str(path)
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


runner = CliRunner()
SUBSCRIBER = "analyst@example.org"


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["web"],
        ["digest", "send"],
        ["digest", "send", "--dry-run"],
        ["digest", "preview", "--subscriber", "analyst@example.org", "--out", "x.html"],
    ],
    ids=" ".join,
)
def test_commands_report_a_broken_template_at_start_up(tmp_path: Path, command: list[str]) -> None:
    writer = template_settings(tmp_path, {"digest.txt": "line\n{{ digest.total | nope }}\n"})
    path = writer.write()

    result = runner.invoke(app, ["--config", str(path), *command])

    assert result.exit_code == 1
    where = tmp_path / "config" / "templates" / "digest.txt"
    assert result.output == f"error: {where}:2: template error: No filter named 'nope'.\n"
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "x.html").exists()


# The preview command: renders the HTML part; sends and records nothing.


@pytest.mark.parametrize(
    ("period", "heading"), [([], "Your digest"), (["--period", "daily"], "Your daily digest")]
)
def test_digest_preview_writes_the_html_and_sends_nothing(
    config: ConfigWriter, tmp_path: Path, period: list[str], heading: str
) -> None:
    config.extra_toml = f'[web]\nsecret_key = "{SECRET}"\nbase_url = "https://m.example.net"\n'
    path = config.write()
    assert runner.invoke(app, ["--config", str(path), "init"]).exit_code == 0
    engine = create_db_engine(config.database_url)
    with Session(engine) as session, session.begin():
        row = add_article(
            session,
            "Officials warn of election interference",
            seen=datetime.now(UTC) - timedelta(hours=1),
        )
        save_matches(session, tag_articles(load_matcher(session), [row]), now=T0)
    out = tmp_path / "preview.html"

    command = ["digest", "preview", "--subscriber", SUBSCRIBER, *period, "--out", str(out)]

    result = runner.invoke(app, ["--config", str(path), *command])

    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out}: [monitor] Election interference (1)\n"
    html = out.read_text(encoding="utf-8")
    found = markup(html)
    assert "Officials warn of <mark" in html
    assert f">{heading}</h1>" in html
    assert "style" in {name for name, _ in found.attrs}, "CSS is inlined"
    assert "<style" not in html
    assert any(v.startswith("https://m.example.net/unsubscribe/") for _, v in found.attrs)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Delivery)).one() == 0
        assert session.exec(select(func.count()).select_from(DeliveryItem)).one() == 0
    assert not config.outbox.exists()
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (
            ["--period", "weekly"],
            0,
            "nothing new for analyst@example.org: no e-mail would be sent\n",
        ),
        (["--period", "monthly"], 2, ""),
    ],
)
def test_digest_preview_of_a_period_without_subscriptions(
    tmp_path: Path, args: list[str], code: int, output: str
) -> None:
    writer = template_settings(tmp_path, {})
    path = writer.write()
    out = tmp_path / "preview.html"

    result = runner.invoke(
        app,
        ["--config", str(path), "digest", "preview", "--subscriber", "analyst@example.org",
         "--out", str(out), *args],
    )  # fmt: skip

    assert result.exit_code == code
    if output:
        assert result.output == output
    assert not out.exists()


def test_digest_preview_of_an_unknown_subscriber(tmp_path: Path) -> None:
    path = template_settings(tmp_path, {}).write()

    result = runner.invoke(
        app,
        ["--config", str(path), "digest", "preview", "--subscriber", "nobody@example.org",
         "--out", str(tmp_path / "p.html")],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "no subscriber 'nobody@example.org'" in result.output


PROSE = [
    "",
    "short",
    "Officials warned on Monday that foreign actors were trying to influence the election "
    "through fake accounts, paid posts and hacked material leaked to friendly outlets.",
    "first paragraph here\n\nsecond one after an empty line",
    "word " * 40,
]
UNRULY = [
    "a https://example.org/a/very/long/path/that/goes/on/and/on/and/on/for/more/than/seventy"
    "/two/characters then more words",
    "  leading spaces and   runs   of spaces  ",
    "before " + "x" * 144 + " after",  # a word of exactly two full lines
]


@pytest.mark.parametrize("text", PROSE)
@pytest.mark.parametrize("width", [20, 72])
def test_wrap_words_wraps_prose_as_jinja_wordwrap_does(text: str, width: int) -> None:
    jinja = Environment().filters["wordwrap"]
    expected = jinja(Environment(), text, width, wrapstring="\n  ")
    assert wrap_words(text, width, wrapstring="\n  ") == expected


@pytest.mark.parametrize("text", PROSE + UNRULY)
@pytest.mark.parametrize("width", [20, 72])
def test_wrap_words_keeps_every_character_within_the_width(text: str, width: int) -> None:
    # Long words start a line of their own, and runs of spaces become one (textwrap differs).
    lines = wrap_words(text, width).split("\n")
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace("\n", "")
