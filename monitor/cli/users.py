"""``monitor users ...``: the admin accounts that may sign in to the web app."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, show, user_errors
from monitor.errors import UsageError
from monitor.models import utcnow

users_app = typer.Typer(help="Admin accounts of the web app: add, list, change a password.",
                        no_args_is_help=True)  # fmt: skip

UsernameArgument = Annotated[str, typer.Argument(help="The user name to sign in with.")]
StdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _read_password(from_stdin: bool) -> str:
    from monitor.web.auth import check_password  # FastAPI: only when needed

    # Never an option value: it would sit in the shell history and in `ps` output.
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("no password on standard input")
        return check_password(line)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return check_password(password)


@users_app.command("add")
@user_errors
def users_add(ctx: typer.Context, username: UsernameArgument, stdin: StdinOption = False) -> None:
    """Add an admin account (the password is asked for, or read with --password-stdin)."""
    from monitor.web.auth import add_user  # FastAPI: only when needed

    password = _read_password(stdin)
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        add_user(session, username=username, password=password, now=utcnow())
    say(f"added user {username}")


@users_app.command("passwd")
@user_errors
def users_passwd(
    ctx: typer.Context, username: UsernameArgument, stdin: StdinOption = False
) -> None:
    """Set a new password; the user's open sessions end."""
    from monitor.web.auth import set_password  # FastAPI: only when needed

    password = _read_password(stdin)
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        set_password(session, username=username, password=password)
    say(f"changed the password of {username}; their open sessions ended")


@users_app.command("list")
@user_errors
def users_list(ctx: typer.Context) -> None:
    """List admin accounts with when each last signed in."""
    from monitor.web.auth import list_users  # FastAPI: only when needed

    engine = prepare(ctx)
    with Session(engine) as session:
        users = list_users(session)
    table = Table(show_header=True)
    for column in ("user", "created", "last sign-in"):
        table.add_column(column)
    for user in users:
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never"
        table.add_row(user.username, user.created_at.strftime("%Y-%m-%d %H:%M UTC"), last)
    show(table)
    say(f"{len(users)} users")
