"""Build the real application against a test database, with tokens of each role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from costguard.api.app import create_app
from costguard.auth.service import create_token
from costguard.budgets.service import Actor, create_budget, parse_spec
from costguard.config import Settings
from costguard.db import transaction, utcnow
from tests.conftest import Database


@dataclass
class Api:
    client: TestClient
    settings: Settings
    db: Database
    tokens: dict[str, str]

    def headers(self, role: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    def post_usage(self, records: list[dict[str, Any]], role: str = "ingest") -> Any:
        return self.client.post("/v1/usage", json=records, headers=self.headers(role))


def token(db: Database, role: str, tenant: str | None = None, name: str | None = None) -> str:
    with transaction(db.factory) as session:
        return create_token(session, role=role, name=name, tenant=tenant, now=utcnow()).secret


def make_api(db: Database, **settings_overrides: Any) -> Api:
    settings = db.settings(**settings_overrides)
    app = create_app(settings, db.factory)
    tokens = {role: token(db, role, name=f"test-{role}") for role in ("admin", "finance", "viewer", "ingest")}
    return Api(TestClient(app), settings, db, tokens)


def add_budget(db: Database, document: dict[str, Any], currency: str = "USD") -> None:
    with transaction(db.factory) as session:
        create_budget(session, parse_spec(document, currency=currency), actor=Actor("test", "api"), now=utcnow())


def usage(
    event_id: str, cost: str, *, tenant: str = "acme", timestamp: str = "2026-12-04T10:00:00Z", **extra: Any
) -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": timestamp, "tenant": tenant, "cost": cost, **extra}
