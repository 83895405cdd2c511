"""The webhook signature, the README's verifier, escaping per format, and channel templates."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from monitor.delivery.channels.compose import render_chat, webhook_body, webhook_payload
from monitor.delivery.channels.escape import (
    escape_html,
    escape_markdown,
    escape_slack,
    escape_text,
)
from monitor.delivery.channels.targets import check_secret, new_secret
from monitor.delivery.channels.webhook import sign, signed_headers
from monitor.delivery.render import _sample_digest, build_environment, load_templates
from monitor.errors import ConfigError, UsageError
from monitor.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)


def readme_verify() -> Any:
    """The ``verify`` function the README shows receivers, as written there."""
    text = README.read_text()
    [code] = re.findall(r"```python\n(import base64, hashlib, hmac, time\n.*?)```", text, re.S)
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["verify"]


def test_the_signature_is_standard_webhooks() -> None:
    body = b'{"schema_version":1}'
    ours = sign(SECRET, "msg_1", 1725861600, body)
    theirs = standardwebhooks.Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(1725861600, UTC), body
    )
    assert ours == theirs


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"body": b'{"schema_version":2}'}, False),
        ({"webhook-timestamp": "+1"}, False),
        ({"webhook-id": "msg_2"}, False),
        ({"age": 301}, False),
        ({"secret": new_secret()}, False),
    ],
)
def test_the_readme_verifier_accepts_ours_and_nothing_else(
    change: dict[str, Any], accepted: bool
) -> None:
    import time

    verify = readme_verify()
    body = b'{"schema_version":1,"type":"digest"}'
    sent_at = datetime.fromtimestamp(time.time() - change.get("age", 0), UTC)
    headers = signed_headers(SECRET, "msg_1", body, now=sent_at)
    if "webhook-timestamp" in change:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    if "webhook-id" in change:
        headers["webhook-id"] = change["webhook-id"]
    assert verify(change.get("secret", SECRET), headers, change.get("body", body)) is accepted


def test_new_secrets_are_standard_and_checked() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert check_secret(secret) == secret
    for bad in ("whsec_", "whsec_" + base64.b64encode(b"x" * 10).decode(), "secret", "whsec_!!"):
        with pytest.raises(UsageError, match="channel secret: use whsec_"):
            check_secret(bad)


ZW = "\u200b"


@pytest.mark.parametrize(
    ("escape", "text", "expected"),
    [
        (escape_markdown, "*bold* [a](https://x) <!here> `c` #h",
         "\\*bold\\* \\[a\\]\\(https://x\\) \\<\\!here\\> \\`c\\` \\#h"),
        (escape_markdown, "@everyone &#64;room &lt;b&gt;",
         f"@{ZW}everyone &{ZW}\\#64;room &{ZW}lt;b&{ZW}gt;"),
        (escape_slack, "<!channel> <https://x|y> & @here",
         f"&lt;!channel&gt; &lt;https://x|y&gt; &amp; @{ZW}here"),
        (escape_html, '<b>x</b> & "q" @room <!channel>',
         f"&lt;b&gt;x&lt;/b&gt; &amp; &#34;q&#34; @{ZW}room &lt;{ZW}!channel&gt;"),
        (escape_text, "line\none\u202e reversed @all <#C1>",
         f"line one reversed @{ZW}all <{ZW}#C1>"),
        (escape_text, f"already @{ZW}safe", f"already @{ZW}safe"),
    ],
)  # fmt: skip
def test_escaping_per_format(escape: Any, text: str, expected: str) -> None:
    assert escape(text) == expected


def test_a_channel_json_template_is_rendered_as_json(tmp_path: Path) -> None:
    (tmp_path / "desk.json").write_text(
        '{"text": {{ "*" ~ (payload.stories ~ " new stories") | slack ~ "*" }},'
        ' "topic": {{ payload.topics[0].name }}, "all": {{ payload }}}'
    )
    env = build_environment(tmp_path)
    payload = webhook_payload(_sample_digest(), key="msg_1", period_key="ch1/daily:x",
                              channel_id=1, channel_name="desk", digest_url="u")  # fmt: skip

    body = json.loads(webhook_body(env, payload, template="desk"))

    assert body["text"] == "*2 new stories*"
    assert body["topic"] == "Sample"
    assert body["all"] == payload


def test_a_json_template_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "desk.json").write_text('{"text": "New: {{ payload.topics[0].name }}"}')
    env = build_environment(tmp_path)
    payload = webhook_payload(_sample_digest(), key="msg_1", period_key="ch1/daily:x",
                              channel_id=1, channel_name="desk", digest_url="u")  # fmt: skip

    with pytest.raises(ConfigError, match=r"^desk\.json: template error: the result is not JSON"):
        webhook_body(env, payload, template="desk")


def test_a_chat_template_override_is_used_and_still_escapes(tmp_path: Path) -> None:
    (tmp_path / "chat.md").write_text("ALERT {{ digest.sections[0].articles[0].title }}\n")
    env = build_environment(tmp_path)
    digest = _sample_digest()
    first = digest.sections[0].articles[0]
    digest.sections[0].articles[0] = replace(first, title="[x](https://evil) @here")

    message = render_chat(env, digest, format_name="markdown", prefix="[m]", digest_url="",
                          max_stories=10)  # fmt: skip

    assert message.body == "ALERT \\[x\\]\\(https://evil\\) @\u200bhere\n"


def test_a_broken_chat_template_stops_the_command_with_its_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "chat.html").write_text("<b>{{ title }}</b>\n{{ 1 / 0 }}\n")
    (tmp_path / "monitor.toml").write_text("")
    from monitor.settings import load_settings

    settings: Settings = load_settings(tmp_path / "monitor.toml")

    with pytest.raises(ConfigError, match=r"chat\.html:2: template error: ZeroDivisionError"):
        load_templates(settings)
