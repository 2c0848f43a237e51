"""Request dependencies: settings, the session factory and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from costguard.auth.service import Principal, authenticate
from costguard.budgets.service import Actor
from costguard.config import Settings
from costguard.db import transaction


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    factory: sessionmaker[Session]
    registry: CollectorRegistry


def context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def principal(request: Request, ctx: AppContext = Depends(context)) -> Principal:
    with transaction(ctx.factory) as session:
        return authenticate(session, bearer_token(request))


def requires(role: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks the role (roles nest)."""

    def check(who: Principal = Depends(principal)) -> Principal:
        who.require(role)
        return who

    return check


def actor_of(who: Principal, source: str = "api") -> Actor:
    return Actor(name=who.name, source=source)
