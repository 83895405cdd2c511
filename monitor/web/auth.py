"""Admin accounts, sign-in throttling and sessions.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommendation). The session cookie is signed and timestamped; it carries a random nonce (the
CSRF token is derived from it) and, once signed in, a random session token whose SHA-256 names
a row of ``admin_session``. Each request looks the row up: deleting it (sign-out, a new
password, ``monitor users passwd``) ends the session at once, whatever copies of the cookie
exist. Failed sign-ins are rows in ``login_attempt``: every web process counts the same.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, delete, func, update
from sqlmodel import Session, col, select

from monitor.errors import NotFoundError, UsageError
from monitor.models import AdminSession, AdminUser, LoginAttempt

_HASHER = PasswordHasher()
# Verifying against this when the name is unknown makes a wrong name cost as much time as a
# wrong password, so response times do not tell which names exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,149}")
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_username(username: str) -> str:
    """``username`` if usable (letters, digits, ``._@-``); raise UsageError otherwise."""
    if not _USERNAME.fullmatch(username):
        raise UsageError(
            f"not a usable user name: {username!r} (letters, digits and . _ @ -, "
            "starting with a letter or digit)"
        )
    return username


def check_password(password: str) -> str:
    """``password`` if long enough; raise UsageError otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    return password


def get_user(session: Session, username: str) -> AdminUser | None:
    """The admin with this name, if any."""
    return session.exec(select(AdminUser).where(AdminUser.username == username)).first()


def add_user(session: Session, *, username: str, password: str, now: datetime) -> AdminUser:
    """Add an admin account; raise UsageError when the name is taken or a value is unusable."""
    check_username(username)
    check_password(password)
    if get_user(session, username) is not None:
        raise UsageError(f"user {username!r} exists already (use `monitor users passwd`)")
    user = AdminUser(username=username, password_hash=hash_password(password), created_at=now)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, *, username: str, password: str) -> AdminUser:
    """Give an admin a new password; their open sessions end with the old one."""
    user = get_user(session, username)
    if user is None:
        raise NotFoundError(f"no user {username!r} (see `monitor users list`)")
    user.password_hash = hash_password(check_password(password))
    session.add(user)
    end_user_sessions(session, user_id=user.id or 0)
    session.flush()
    return user


def list_users(session: Session) -> list[AdminUser]:
    """Every admin, by name."""
    return list(session.exec(select(AdminUser).order_by(col(AdminUser.username))))


# Per client address, across every name: a client trying many names (password spraying) is
# slowed after this many times login_max_failures.
ADDRESS_FACTOR = 4
# The wait after the first failure over the limit; each further failure doubles it.
FIRST_DELAY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Throttle:
    """Sign-in throttling by client and account, with growing delays.

    Failures are counted per (name, client address) within ``window``: after ``max_failures``
    of them that client waits FIRST_DELAY before its next try for that name, and each further
    failure doubles the wait, up to ``window``. A client's failures across all names count too,
    with ADDRESS_FACTOR times the allowance. Nothing locks an account for everyone: its owner
    signs in from another client (another address) whatever a guesser does elsewhere.
    """

    max_failures: int
    window: timedelta
    first_delay: timedelta = FIRST_DELAY

    def wait(self, session: Session, *, username: str, address: str, now: datetime) -> timedelta:
        """How long this client must wait before trying this name again (zero: go ahead)."""
        since = now - self.window
        pair = (col(LoginAttempt.username) == username[:150]) & (
            col(LoginAttempt.address) == address[:64]
        )
        waits = [
            self._wait(session, pair, since, self.max_failures, now),
            self._wait(
                session,
                col(LoginAttempt.address) == address[:64],
                since,
                self.max_failures * ADDRESS_FACTOR,
                now,
            ),
        ]
        return max([timedelta(0), *waits])

    def _wait(
        self, session: Session, where: Any, since: datetime, allowed: int, now: datetime
    ) -> timedelta:
        # The count and the latest failure are all that matter: one small aggregate query.
        count, latest = session.exec(
            select(func.count(), func.max(LoginAttempt.attempted_at)).where(
                where, col(LoginAttempt.attempted_at) > since
            )
        ).one()
        if not count or count < allowed or latest is None:
            return timedelta(0)
        doublings = min(int(count) - allowed, 30)
        delay = min(self.first_delay * (1 << doublings), self.window)
        return _aware(latest) + delay - now

    def record_failure(
        self, session: Session, *, username: str, address: str, now: datetime
    ) -> None:
        """Count a failed sign-in; failures older than the window are dropped on the way."""
        session.execute(
            delete(LoginAttempt).where(col(LoginAttempt.attempted_at) <= now - self.window)
        )
        session.add(LoginAttempt(username=username[:150], address=address[:64], attempted_at=now))
        session.flush()

    def forget(self, session: Session, *, username: str, address: str) -> None:
        """Forget this client's failures for this name: it has just signed in."""
        session.execute(
            delete(LoginAttempt).where(
                col(LoginAttempt.username) == username[:150],
                col(LoginAttempt.address) == address[:64],
            )
        )

    def failures(self, session: Session, *, username: str, now: datetime) -> int:
        """Failed sign-ins for this name within the window, from every client."""
        statement = select(func.count()).where(
            LoginAttempt.username == username, col(LoginAttempt.attempted_at) > now - self.window
        )
        return int(session.exec(statement).one())


def _aware(moment: datetime) -> datetime:
    # An aggregate's value skips the column type: SQLite gives it back without its time zone.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def authenticate(
    session: Session, *, username: str, password: str, now: datetime
) -> AdminUser | None:
    """The admin these credentials belong to (their last sign-in noted), or None."""
    user = get_user(session, username)
    if user is None:
        password_matches(_DUMMY_HASH, password)
        return None
    if not password_matches(user.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True, slots=True)
class WebSession:
    """What the session cookie carries: the CSRF nonce, and the token of a signed-in session
    (None: not signed in). The token only counts while its ``admin_session`` row exists."""

    nonce: str
    token: str | None = None

    @classmethod
    def anonymous(cls) -> WebSession:
        """A fresh session for a visitor who has not signed in."""
        return cls(nonce=secrets.token_urlsafe(24))


# A session's last_seen_at is written at most this often: not one write per page.
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    """The key of a session token's row: its SHA-256, so the table opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, user: AdminUser, *, now: datetime, lifetime: timedelta
) -> WebSession:
    """A new signed-in session for ``user`` (new nonce and token: no fixation), stored; idle
    sessions past ``lifetime`` are removed on the way."""
    session.execute(delete(AdminSession).where(col(AdminSession.last_seen_at) <= now - lifetime))
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            token_hash=token_hash(token), user_id=user.id or 0, created_at=now, last_seen_at=now
        )
    )
    session.flush()
    return WebSession(secrets.token_urlsafe(24), token)


def end_session(session: Session, web: WebSession) -> None:
    """End the signed-in session ``web`` names (sign-out); its cookie opens nothing any more."""
    if web.token is not None:
        session.execute(
            delete(AdminSession).where(col(AdminSession.token_hash) == token_hash(web.token))
        )


def end_user_sessions(session: Session, *, user_id: int) -> int:
    """End every session of a user (a new password); how many there were."""
    result = session.execute(delete(AdminSession).where(col(AdminSession.user_id) == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def session_user(
    engine: Engine, web: WebSession, *, now: datetime, lifetime: timedelta
) -> AdminUser | None:
    """The admin a session belongs to, if it is signed in and neither ended nor idle too long.

    Reads in one short transaction; renews the session's last_seen_at (in another, only when
    TOUCH_EVERY has passed), so most pages write nothing.
    """
    if web.token is None:
        return None
    key = token_hash(web.token)
    with Session(engine) as session:
        found = session.exec(
            select(AdminSession, AdminUser)
            .join(AdminUser, col(AdminUser.id) == AdminSession.user_id)
            .where(AdminSession.token_hash == key)
        ).first()
        if found is None:
            return None
        row, user = found
        seen = row.last_seen_at
        session.expunge(user)
    if seen <= now - lifetime:
        return None
    if now - seen >= TOUCH_EVERY:
        with Session(engine) as session, session.begin():
            session.execute(
                update(AdminSession)
                .where(col(AdminSession.token_hash) == key, col(AdminSession.last_seen_at) < now)
                .values(last_seen_at=now)
            )
    return user


class SessionCodec:
    """Signs sessions into cookie values and reads them back, refusing old or forged ones."""

    def __init__(self, secret_key: str, *, lifetime: timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="monitor.web.session")
        self.lifetime = lifetime

    def dump(self, session: WebSession) -> str:
        """The cookie value for ``session``."""
        return self._serializer.dumps([session.nonce, session.token])

    def load(self, value: str | None) -> WebSession | None:
        """The session in a cookie value, or None when missing, forged, malformed or expired."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        # A cookie of the older form (user id and password fingerprint) is not a session now.
        if not (isinstance(data, list) and len(data) == 2):
            return None
        nonce, token = data
        if not isinstance(nonce, str) or not (token is None or isinstance(token, str)):
            return None
        return WebSession(nonce, token)
