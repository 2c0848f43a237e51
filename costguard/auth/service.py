"""Tokens and roles: admin > finance > viewer; ingest may only post usage; a tenant binding narrows all."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costguard.auth.models import ApiToken
from costguard.errors import Forbidden, InvalidInput, NotFound, Unauthorized

ROLES = ("admin", "finance", "viewer", "ingest")
# What each role may do; roles nest: admin includes finance, finance includes viewer.
GRANTS = {
    "admin": {"admin", "finance", "viewer", "ingest"},
    "finance": {"finance", "viewer"},
    "viewer": {"viewer"},
    "ingest": {"ingest"},
}
SECRET_PREFIX = "cg_"


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    role: str
    tenant: str | None

    def require(self, role: str) -> None:
        if role not in GRANTS[self.role]:
            raise Forbidden(f"this needs the {role} role; the token {self.name!r} has the {self.role} role")

    def require_tenant(self, tenant: str) -> None:
        if self.tenant is not None and tenant != self.tenant:
            raise Forbidden(f"the token {self.name!r} is bound to tenant {self.tenant!r} and cannot act on {tenant!r}")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: str
    name: str
    role: str
    tenant: str | None
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, role: str, name: str | None, tenant: str | None, now: datetime) -> IssuedToken:
    if role not in ROLES:
        raise InvalidInput(f"role: {role!r} is not a role; use one of {', '.join(ROLES)}")
    token_id = secrets.token_hex(6)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    name = name or f"{role}-{token_id}"
    session.add(
        ApiToken(
            id=token_id, name=name, role=role, tenant=tenant, secret_hash=_hash(secret), created_at=now, revoked_at=None
        )
    )
    session.flush()
    return IssuedToken(token_id, name, role, tenant, secret)


def authenticate(session: Session, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized(
            "missing token; send Authorization: Bearer <token> (create one with costguard tokens create)"
        )
    row = session.scalar(select(ApiToken).where(ApiToken.secret_hash == _hash(secret)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked token; create a new one with costguard tokens create")
    return Principal(row.id, row.name, row.role, row.tenant)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))


def revoke_token(session: Session, token_id: str, *, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token with id {token_id!r}; see costguard tokens list")
    row.revoked_at = row.revoked_at or now
    return row


def has_tokens(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ApiToken)))
