"""CSRF tokens: each form carries an HMAC of the session's nonce, checked on every POST.

The token is tied to the session cookie (synchroniser pattern without server state): a page on
another site can make the browser send the cookie, but cannot read the token to send with it.
The SameSite=Lax cookie is a second line, not the only one.
"""

from __future__ import annotations

import hashlib
import hmac

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token(secret_key: str, nonce: str) -> str:
    """The CSRF token of the session with ``nonce``."""
    mac = hmac.new(secret_key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_valid(secret_key: str, nonce: str, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of the session with ``nonce``."""
    if not token:
        return False
    return hmac.compare_digest(csrf_token(secret_key, nonce), token)


def notice_signature(secret_key: str, notice: str) -> str:
    """The signature of a notice carried in a redirect's URL (``?done=...&sig=...``), so that
    a link from elsewhere cannot make an admin page say what it likes."""
    mac = hmac.new(secret_key.encode(), f"notice:{notice}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def notice_valid(secret_key: str, notice: str, signature: str) -> bool:
    """Whether ``signature`` is the notice's."""
    return bool(signature) and hmac.compare_digest(notice_signature(secret_key, notice), signature)
