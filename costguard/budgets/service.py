"""Budget use cases shared by the API, the console and budgets-as-code. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from costguard.budgets import repository
from costguard.budgets.models import BudgetAudit, BudgetRow
from costguard.budgets.schemas import ALL, BudgetSpec, validation_messages
from costguard.errors import Conflict, InvalidInput, NotFound, PreconditionFailed


@dataclass(frozen=True, slots=True)
class StoredBudget:
    spec: BudgetSpec
    version: int
    managed_by_file: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        return f'"{self.spec.id}-v{self.version}"'

    def document(self) -> dict[str, Any]:
        data = self.spec.document()
        data["version"] = self.version
        data["managed_by_file"] = self.managed_by_file
        data["updated_at"] = self.updated_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change (the token's name) and through what (api, ui, file, cli)."""

    name: str
    source: str


def _stored(row: BudgetRow) -> StoredBudget:
    return StoredBudget(repository.row_to_spec(row), row.version, row.managed_by_file, row.created_at, row.updated_at)


def parse_spec(data: Any, *, currency: str) -> BudgetSpec:
    """Validate a budget document; InvalidInput lists one sentence per problem."""
    try:
        spec = BudgetSpec.model_validate(data)
    except ValidationError as exc:
        messages = validation_messages(exc.errors())
        raise InvalidInput("; ".join(messages), details=messages) from None
    if spec.currency != currency:
        message = f"currency: {spec.currency} differs from this deployment's currency {currency}; use {currency}"
        raise InvalidInput(message, details=[message])
    return spec


def list_budgets(session: Session, *, tenant: str | None = None) -> list[StoredBudget]:
    return [_stored(row) for row in repository.list_rows(session, tenant=tenant)]


def get_budget(session: Session, budget_id: str, *, tenant: str | None = None) -> StoredBudget:
    row = repository.get(session, budget_id)
    if row is None or (tenant is not None and row.tenant not in (tenant, ALL)):
        raise NotFound(f"no budget with id {budget_id!r}; list them with GET /v1/budgets")
    return _stored(row)


def _refuse_file_managed(row: BudgetRow, *, take_over: bool) -> None:
    if row.managed_by_file and not take_over:
        raise Conflict(
            f"budget {row.id!r} is managed by the file {row.managed_by_file}; edit that file, "
            "or repeat the request with take_over=true to manage it here from now on"
        )


def create_budget(
    session: Session, spec: BudgetSpec, *, actor: Actor, now: datetime, managed_by_file: str | None = None
) -> StoredBudget:
    if repository.get(session, spec.id) is not None:
        raise Conflict(f"a budget with id {spec.id!r} already exists; choose another id or update it with PUT")
    row = repository.insert(session, spec, now=now, managed_by_file=managed_by_file)
    repository.add_audit(
        session,
        budget_id=spec.id,
        action="create",
        actor=actor.name,
        source=actor.source,
        at=now,
        before=None,
        after=spec.document(),
    )
    return _stored(row)


def update_budget(
    session: Session,
    spec: BudgetSpec,
    *,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    take_over: bool = False,
    managed_by_file: str | None = None,
) -> StoredBudget:
    """Replace a budget if nobody changed it since ``expected_version`` (None: whatever is current)."""
    row = repository.get(session, spec.id)
    if row is None:
        raise NotFound(f"no budget with id {spec.id!r}; create it with POST /v1/budgets")
    if managed_by_file is None:
        _refuse_file_managed(row, take_over=take_over)
    before = repository.row_to_spec(row).document()
    version = row.version if expected_version is None else expected_version
    session.expire(row)
    if not repository.update_if_version(
        session, spec, expected_version=version, now=now, managed_by_file=managed_by_file
    ):
        raise PreconditionFailed(
            f"budget {spec.id!r} was changed by someone else since you read it; reload it and apply your edit again"
        )
    repository.add_audit(
        session,
        budget_id=spec.id,
        action="update",
        actor=actor.name,
        source=actor.source,
        at=now,
        before=before,
        after=spec.document(),
    )
    refreshed = repository.get(session, spec.id)
    assert refreshed is not None
    session.refresh(refreshed)
    return _stored(refreshed)


def delete_budget(
    session: Session,
    budget_id: str,
    *,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
    take_over: bool = False,
    from_file: bool = False,
) -> None:
    row = repository.get(session, budget_id)
    if row is None:
        raise NotFound(f"no budget with id {budget_id!r}")
    if not from_file:
        _refuse_file_managed(row, take_over=take_over)
    before = repository.row_to_spec(row).document()
    version = row.version if expected_version is None else expected_version
    session.expire(row)
    if not repository.delete_if_version(session, budget_id, expected_version=version):
        raise PreconditionFailed(
            f"budget {budget_id!r} was changed by someone else since you read it; reload it before deleting"
        )
    repository.add_audit(
        session,
        budget_id=budget_id,
        action="delete",
        actor=actor.name,
        source=actor.source,
        at=now,
        before=before,
        after=None,
    )


def audit_document(entry: BudgetAudit) -> dict[str, Any]:
    return {
        "id": entry.id,
        "budget": entry.budget_id,
        "action": entry.action,
        "actor": entry.actor,
        "source": entry.source,
        "at": entry.at.isoformat(),
        "before": entry.before,
        "after": entry.after,
    }


def audit_trail(
    session: Session, *, budget_id: str | None = None, tenant: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Audit entries, newest first; a tenant-bound reader sees only entries about its tenant."""
    entries = [audit_document(e) for e in repository.audit_entries(session, budget_id=budget_id, limit=limit)]
    if tenant is None:
        return entries
    return [e for e in entries if any(doc and doc.get("tenant") in (tenant, ALL) for doc in (e["before"], e["after"]))]
