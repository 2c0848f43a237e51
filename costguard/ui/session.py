"""Console sessions and CSRF tokens, stateless and signed.

The cookie holds ``token_id.expires.nonce.mac`` where the MAC is keyed with the API token's stored
hash: that hash never leaves the server, the raw token is never stored anywhere, every replica can
verify a session without a sessions table, and revoking the token ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

SESSION_COOKIE = "costguard_session"
LOGIN_CSRF_COOKIE = "costguard_login_csrf"
CSRF_FIELD = "csrf"
SESSION_LIFETIME = timedelta(hours=8)


def _mac(key: str, *parts: str) -> str:
    return hmac.new(key.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionCookie:
    token_id: str
    expires: int
    nonce: str
    mac: str

    def value(self) -> str:
        return f"{self.token_id}.{self.expires}.{self.nonce}.{self.mac}"

    def valid(self, key: str, now: datetime) -> bool:
        expected = _mac(key, "session", self.token_id, str(self.expires), self.nonce)
        return hmac.compare_digest(expected, self.mac) and now.timestamp() < self.expires

    def csrf_token(self, key: str) -> str:
        """Bound to this session: a token from another session (or none) is refused."""
        return _mac(key, "csrf", self.nonce)


def issue(token_id: str, key: str, now: datetime) -> SessionCookie:
    expires = int((now + SESSION_LIFETIME).timestamp())
    nonce = secrets.token_urlsafe(18)
    return SessionCookie(token_id, expires, nonce, _mac(key, "session", token_id, str(expires), nonce))


def parse(value: str | None) -> SessionCookie | None:
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return SessionCookie(parts[0], int(parts[1]), parts[2], parts[3])


def same_secret(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
