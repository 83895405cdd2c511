"""``monitor report``: build, store and print the daily alert report of a day."""

from __future__ import annotations

import asyncio
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import prepare, say, settings_of, tell, user_errors, write_out
from monitor.errors import UsageError
from monitor.models import utcnow
from monitor.operations import build_daily_report, last_full_day, send_outbox


class ReportFormat(StrEnum):
    """The forms ``monitor report`` writes."""

    HTML = "html"
    TEXT = "text"
    JSON = "json"


def parse_day(value: str) -> date:
    """Read ``YYYY-MM-DD`` as a date; raise UsageError otherwise."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"not a date: {value!r} (use YYYY-MM-DD, as 2024-09-09)") from None


@user_errors
def daily_report(
    ctx: typer.Context,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="The local day (YYYY-MM-DD, in reports.timezone).",
            show_default="yesterday",
        ),
    ] = None,
    form: Annotated[
        ReportFormat, typer.Option("--format", help="What to write.")
    ] = ReportFormat.TEXT,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    email: Annotated[
        bool,
        typer.Option(
            "--email",
            help="Also e-mail it to reports.reviewers (once per reviewer and day).",
        ),
    ] = False,
) -> None:
    """Build the daily report of a day, store it (replacing an earlier one) and print it."""
    settings = settings_of(ctx)
    now = utcnow()
    wanted = parse_day(day) if day else last_full_day(now, settings.reports.timezone)
    engine = prepare(ctx)
    if email and not settings.reports.reviewers:
        raise UsageError("no reviewers to e-mail: set reports.reviewers in monitor.toml")
    built = build_daily_report(engine, settings, day=wanted, now=now, email=email)
    if email:
        sent = asyncio.run(send_outbox(engine, settings))
        # On standard error: standard output may be carrying the report itself.
        tell(
            "emailed",
            "green",
            f"report of {wanted.isoformat()}: {built.planned} new deliveries to reviewers; "
            f"sent {len(sent.sent)}, retrying {len(sent.retrying)}, failed {len(sent.failed)}",
        )
        for problem in sent.retrying:
            tell("retrying", "yellow", problem)
        for problem in sent.failed:
            tell("failed", "red", problem)
    rendered = built.rendered
    document = {
        ReportFormat.HTML: rendered.html,
        ReportFormat.TEXT: rendered.text,
        ReportFormat.JSON: rendered.json,
    }[form]
    if out is None:
        write_out(document)
        return
    try:
        out.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    say(f"report of {wanted.isoformat()} ({form.value}) written to {out}")
