"""Daily reports by e-mail: planned once per reviewer and day, sent through the real outbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from monitor.cli.app import app
from monitor.models import Delivery, DeliveryStatus, Report
from monitor.operations import build_daily_report, send_outbox
from monitor.reports.mail import report_period_key
from tests.reports.scenario import DAY, NOW, ZONE
from tests.utils.config import ConfigWriter
from tests.utils.smtpserver import SmtpServer

runner = CliRunner()
REVIEWERS = ["desk@example.org", "Editor@Example.org"]


def reviewers_config(config: ConfigWriter, smtp: SmtpServer, reviewers: list[str]) -> None:
    config.smtp_port = smtp.port
    listed = ", ".join(f'"{address}"' for address in reviewers)
    config.extra_toml = f'[reports]\ntimezone = "{ZONE}"\nreviewers = [{listed}]\n'


def deliveries(engine: Engine) -> list[tuple[str, str, DeliveryStatus]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery).where(col(Delivery.period_key).startswith("report:"))
        ).all()
        return sorted((d.period_key, d.message_id, d.status) for d in rows)


def parts(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): str(part.get_content())
        for part in message.walk()
        if not part.is_multipart()
    }


def test_reviewers_get_the_report_once_however_often_the_day_is_built(
    seeded: Engine, config: ConfigWriter, smtp_server: SmtpServer
) -> None:
    reviewers_config(config, smtp_server, REVIEWERS)
    settings = config.settings()

    built = build_daily_report(seeded, settings, day=DAY, now=NOW, email=True)
    sent = asyncio.run(send_outbox(seeded, settings))
    with Session(seeded) as session:
        stored = session.exec(select(Report).where(Report.day == DAY)).one()
    again = build_daily_report(seeded, settings, day=DAY, now=NOW + timedelta(hours=1), email=True)
    sent_again = asyncio.run(send_outbox(seeded, settings))

    assert (built.planned, again.planned) == (2, 0)
    # The domain is lower-cased; the local part is the reviewer's own (it may be case-sensitive).
    assert sorted(sent.sent) == ["Editor@example.org", "desk@example.org"]
    assert sent_again.sent == []
    received = sorted(smtp_server.messages, key=lambda m: m.recipients)
    assert [m.recipients for m in received] == [["Editor@example.org"], ["desk@example.org"]]
    planned = deliveries(seeded)
    assert [key for key, _, _ in planned] == [report_period_key(DAY)] * 2
    assert [status for _, _, status in planned] == [DeliveryStatus.SENT] * 2
    assert sorted(str(m.message["Message-ID"]) for m in received) == sorted(
        message_id for _, message_id, _ in planned
    )
    for item in received:
        message = item.message
        assert message["Subject"] == stored.subject
        assert "2024" in stored.subject
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["List-Unsubscribe"] is None  # reviewers are configured, not subscribed
        bodies = parts(message)
        assert set(bodies) == {"text/plain", "text/html"}
        # Mail clients do not show SVG: the e-mail carries the table charts.
        assert "<svg" not in bodies["text/html"]
        assert "<svg" in stored.html
        assert "Election interference" in bodies["text/html"]
        # Line ends come back from the wire as CRLF.
        assert bodies["text/plain"].replace("\r\n", "\n").strip() == stored.text.strip()


def test_a_report_no_longer_stored_fails_with_the_reason(
    seeded: Engine, config: ConfigWriter, smtp_server: SmtpServer
) -> None:
    reviewers_config(config, smtp_server, REVIEWERS[:1])
    settings = config.settings()
    build_daily_report(seeded, settings, day=DAY, now=NOW, email=True)
    with Session(seeded) as session, session.begin():
        session.delete(session.exec(select(Report).where(Report.day == DAY)).one())

    sent = asyncio.run(send_outbox(seeded, settings))

    assert sent.sent == []
    assert smtp_server.messages == []
    assert len(sent.failed) == 1
    assert "no longer stored" in sent.failed[0]
    with Session(seeded) as session:
        delivery = session.exec(select(Delivery)).one()
    assert delivery.status == DeliveryStatus.FAILED
    assert "2024-09-09" in (delivery.last_error or "")


def test_cli_emails_the_report(
    seeded: Engine, config: ConfigWriter, smtp_server: SmtpServer
) -> None:
    reviewers_config(config, smtp_server, REVIEWERS[:1])
    args = ["--config", str(config.write()), "report", "--date", DAY.isoformat(), "--email"]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "1 new deliveries to reviewers; sent 1, retrying 0, failed 0" in result.stderr
    assert result.stdout.lstrip().startswith("{")  # the report itself, undisturbed
    assert [m.recipients for m in smtp_server.messages] == [["desk@example.org"]]


@pytest.mark.parametrize("reviewers", [[]])
def test_cli_email_without_reviewers_says_what_to_set(
    config: ConfigWriter, smtp_server: SmtpServer, reviewers: list[str]
) -> None:
    reviewers_config(config, smtp_server, reviewers)
    result = runner.invoke(app, ["--config", str(config.write()), "report", "--email"])
    assert result.exit_code == 1
    assert "set reports.reviewers" in result.output
