"""Admin accounts, sign-in throttling and the signed session cookie.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommendation). A session is a signed, timestamped cookie naming the user, a random nonce (the
CSRF token is derived from it) and a fingerprint of the password hash, so changing a password
ends every session made with the old one. Failed sign-ins are rows in ``login_attempt``: every
web process counts the same failures.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from monitor.errors import NotFoundError, UsageError
from monitor.models import AdminUser, LoginAttempt

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
    session.flush()
    return user


def list_users(session: Session) -> list[AdminUser]:
    """Every admin, by name."""
    return list(session.exec(select(AdminUser).order_by(col(AdminUser.username))))


@dataclass(frozen=True, slots=True)
class Throttle:
    """The sign-in limit: ``max_failures`` per name or per address within ``window``."""

    max_failures: int
    window: timedelta

    def wait(self, session: Session, *, username: str, address: str, now: datetime) -> timedelta:
        """How long sign-ins for this name or from this address must wait (zero: go ahead)."""
        since = now - self.window
        waits = [timedelta(0)]
        for column, value in ((LoginAttempt.username, username), (LoginAttempt.address, address)):
            times = session.exec(
                select(LoginAttempt.attempted_at)
                .where(column == value, col(LoginAttempt.attempted_at) > since)
                .order_by(col(LoginAttempt.attempted_at).desc())
                .limit(self.max_failures)
            ).all()
            if len(times) >= self.max_failures:
                # Allowed again once the oldest of the last max_failures leaves the window.
                waits.append(times[-1] + self.window - now)
        return max(waits)

    def record_failure(
        self, session: Session, *, username: str, address: str, now: datetime
    ) -> None:
        """Count a failed sign-in; failures older than the window are dropped on the way."""
        session.execute(
            delete(LoginAttempt).where(col(LoginAttempt.attempted_at) <= now - self.window)
        )
        session.add(LoginAttempt(username=username[:150], address=address[:64], attempted_at=now))
        session.flush()

    def failures(self, session: Session, *, username: str, now: datetime) -> int:
        """Failed sign-ins for this name within the window."""
        statement = select(func.count()).where(
            LoginAttempt.username == username, col(LoginAttempt.attempted_at) > now - self.window
        )
        return int(session.exec(statement).one())


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
    """What the session cookie carries: who (None: not signed in) and the CSRF nonce."""

    nonce: str
    user_id: int | None = None
    fingerprint: str = ""

    @classmethod
    def anonymous(cls) -> WebSession:
        """A fresh session for a visitor who has not signed in."""
        return cls(nonce=secrets.token_urlsafe(24))

    @classmethod
    def signed_in(cls, user: AdminUser) -> WebSession:
        """A fresh session (new nonce: no fixation) for ``user``."""
        return cls(secrets.token_urlsafe(24), user.id, fingerprint(user.password_hash))


def fingerprint(password_hash: str) -> str:
    """A short digest of a password hash: sessions made before a password change stop working."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class SessionCodec:
    """Signs sessions into cookie values and reads them back, refusing old or forged ones."""

    def __init__(self, secret_key: str, *, lifetime: timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="monitor.web.session")
        self.lifetime = lifetime

    def dump(self, session: WebSession) -> str:
        """The cookie value for ``session``."""
        return self._serializer.dumps([session.nonce, session.user_id, session.fingerprint])

    def load(self, value: str | None) -> WebSession | None:
        """The session in a cookie value, or None when missing, forged, malformed or expired."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        if not (isinstance(data, list) and len(data) == 3):
            return None
        nonce, user_id, print_ = data
        if not isinstance(nonce, str) or not isinstance(print_, str):
            return None
        if user_id is not None and not isinstance(user_id, int):
            return None
        return WebSession(nonce, user_id, print_)


def session_user(session: Session, web: WebSession) -> AdminUser | None:
    """The admin a session belongs to, if it is signed in and their password has not changed."""
    if web.user_id is None:
        return None
    user = session.get(AdminUser, web.user_id)
    if user is None or not secrets.compare_digest(fingerprint(user.password_hash), web.fingerprint):
        return None
    return user
