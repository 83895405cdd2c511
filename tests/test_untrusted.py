"""monitor.untrusted: the characters and links from feeds that never reach a reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.untrusted import strip_controls, web_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("Café — “quoted” 日本語 עברית", "Café — “quoted” 日本語 עברית"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        # bidi embeddings, overrides and isolates reorder what is shown: gone
        ("invoice_gnp\u202e.exe", "invoice_gnp.exe"),
        ("\u202aa\u202bb\u202cc\u202dd\u2066e\u2067f\u2068g\u2069", "abcdefg"),
        # the implicit marks only place punctuation in right-to-left text: kept
        ("שלום\u200f!", "שלום\u200f!"),
        # terminal escapes go whole, not only their ESC
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;31;40mbold\x1b[m", "bold"),
        ("\x1b]0;pwned title\x07after", "after"),
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x9b2Jclear", "clear"),
        ("\x1bcreset", "reset"),
        ("lone \x1b", "lone "),
        # other C0 controls, DEL and C1 controls vanish
        ("a\x00b\x07c\x08d\x7fe\x90f", "abcdef"),
        # controls that end a line become one: no overwriting, no words glued together
        ("safe\rEVIL", "safe\nEVIL"),
        ("crlf\r\nline", "crlf\nline"),
        ("a\x0bb\x0cc\x85d\u2028e", "a\nb\nc\nd\ne"),
    ],
)
def test_strip_controls(text: str, expected: str) -> None:
    assert strip_controls(text) == expected


@given(st.text())
def test_nothing_hostile_survives_and_a_second_pass_changes_nothing(text: str) -> None:
    cleaned = strip_controls(text)

    assert strip_controls(cleaned) == cleaned
    assert not any(
        (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or "\u202a" <= c <= "\u202e"
        or "\u2066" <= c <= "\u2069"
        for c in cleaned
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://news.example.com/a/1", "https://news.example.com/a/1"),
        ("HTTP://News.Example.com/a", "HTTP://News.Example.com/a"),
        ("  https://news.example.com/a  ", "https://news.example.com/a"),
        ("javascript:alert(1)", ""),
        (" JavaScript:alert(1)", ""),
        ("java\tscript:alert(1)", ""),
        ("jav\nascript:alert(1)", ""),
        ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", ""),
        ("vbscript:msgbox(1)", ""),
        ("file:///etc/passwd", ""),
        ("ftp://files.example.com/a", ""),
        ("mailto:a@example.com", ""),
        ("/relative/path", ""),
        ("https:///no-host", ""),
        ("http://[::1", ""),
        ("", ""),
        (None, ""),
        # what a browser would send: controls, bidi overrides and spaces percent-encoded
        ("https://x.example/gnp\u202e.exe", "https://x.example/gnp%E2%80%AE.exe"),
        ("https://x.example/a b\x1b[31m", "https://x.example/a%20b%1B[31m"),
        ("https://x.example/\u0430\u0431", "https://x.example/\u0430\u0431"),
    ],
)
def test_web_url_keeps_only_http_links(url: str | None, expected: str) -> None:
    assert web_url(url) == expected
