"""``monitor prune``: remove old articles, keeping their keys so they do not come back."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import prepare, say, settings_of, user_errors
from monitor.models import utcnow
from monitor.operations import prune_articles
from monitor.settings import parse_duration


@user_errors
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Remove articles first seen longer ago than this (90d, 12w).",
            show_default="retention.older_than",
        ),
    ] = None,
    matched_older_than: Annotated[
        str | None,
        typer.Option(
            "--matched-older-than",
            help="Articles a topic matched are kept until they are this old.",
            show_default="retention.matched_older_than",
        ),
    ] = None,
) -> None:
    """Remove old articles (matched ones are kept longer); their keys stay as tombstones."""
    settings = settings_of(ctx)
    engine = prepare(ctx)
    result = prune_articles(
        engine,
        settings,
        now=utcnow(),
        older_than=parse_duration(older_than) if older_than else None,
        matched_older_than=parse_duration(matched_older_than) if matched_older_than else None,
    )
    say(
        f"pruned {result.articles} articles ({result.matched} matched), "
        f"{result.stories} stories touched, {result.bands} old index rows"
    )
