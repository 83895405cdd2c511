"""Rendering a digest: golden files, hostile feed text, header injection and line lengths.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/delivery/test_render.py`` and
read the diff before committing it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.delivery.digest import Digest, DigestArticle, DigestSection, segments
from monitor.delivery.render import (
    build_environment,
    build_message,
    digest_subject,
    render_digest,
    safe_url,
)

GOLDEN = Path(__file__).parent / "golden"
FROM_ADDRESS = "monitor@example.net"


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


def message_for(digest: Digest) -> EmailMessage:
    rendered = render_digest(build_environment(), digest, subject_prefix="[monitor]")
    return build_message(rendered, digest, from_address=FROM_ADDRESS, from_name="monitor")


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
    message = parse(message_for(fixed_digest()).as_bytes())

    # Python folds a long Subject right after the colon; unfolding leaves a leading space.
    assert message["Subject"].strip() == (
        "[monitor] 5 new articles: Election interference, Russian disinformation"
    )
    assert message["From"] == "monitor <monitor@example.net>"
    assert message["To"] == "Ada Analyst <ada@example.org>"
    assert message["Message-ID"] == "<digest.0123456789abcdef01234567@example.net>"
    assert message["Date"] == "Mon, 09 Sep 2024 06:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    ("names", "total", "prefix", "subject"),
    [
        (["Banks"], 1, "[monitor]", "[monitor] 1 new article: Banks"),
        (["Banks", "Votes"], 2, "[monitor]", "[monitor] 2 new articles: Banks, Votes"),
        (["A", "B", "C"], 3, "", "3 new articles: A, B, C"),
        (["A", "B", "C", "D", "E"], 5, "[m]", "[m] 5 new articles: A, B, C and 2 more"),
    ],
)
def test_subject(names: list[str], total: int, prefix: str, subject: str) -> None:
    sections = [DigestSection(n.lower(), n, [article()]) for n in names]
    sections[0].more = total - len(names)

    assert digest_subject(digest_with(sections=sections), prefix) == subject


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
    assert "&lt;script&gt;alert(&#39;the <mark" in html


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
