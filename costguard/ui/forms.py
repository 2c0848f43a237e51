"""Form submissions turned into budget service calls; validation errors come back per field.

The rules are the API's: parse_spec validates, the services enforce ids, versions and file
ownership, and the same tenant binding applies. Changes are recorded with source "ui".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from costguard.api.deps import AppContext
from costguard.auth.service import Principal
from costguard.budgets import service
from costguard.budgets.schemas import ALL, BudgetSpec
from costguard.budgets.service import Actor, StoredBudget
from costguard.db import transaction, utcnow
from costguard.errors import Conflict, Forbidden, InvalidInput, PreconditionFailed
from costguard.ui.views import FormErrors, form_document

SOURCE = "ui"


@dataclass(slots=True)
class Outcome:
    budget_id: str = ""
    errors: FormErrors = field(default_factory=FormErrors)
    status: int = 200
    conflict: StoredBudget | None = None


def _actor(who: Principal) -> Actor:
    return Actor(name=who.name, source=SOURCE)


def _validate(ctx: AppContext, form: dict[str, str], outcome: Outcome) -> BudgetSpec | None:
    document, problems = form_document(form)
    for problem in problems:
        outcome.errors.add(problem)
    try:
        spec = service.parse_spec(document, currency=ctx.settings.currency)
    except InvalidInput as exc:
        for sentence in exc.details or [exc.message]:
            outcome.errors.add(sentence)
        spec = None
    if outcome.errors:
        outcome.status = 422
        return None
    return spec


def _in_scope(who: Principal, tenant: str, outcome: Outcome) -> bool:
    if who.tenant is not None and tenant != who.tenant:
        what = "every tenant (*)" if tenant == ALL else repr(tenant)
        outcome.errors.add(f"tenant: your token is bound to tenant {who.tenant!r} and cannot manage {what}")
        outcome.status = 403
        return False
    return True


def create(ctx: AppContext, who: Principal, form: dict[str, str]) -> Outcome:
    outcome = Outcome()
    spec = _validate(ctx, form, outcome)
    if spec is None or not _in_scope(who, spec.tenant, outcome):
        return outcome
    try:
        with transaction(ctx.factory) as session:
            service.create_budget(session, spec, actor=_actor(who), now=utcnow())
    except Conflict as exc:
        outcome.errors.add(f"id: {exc.message}")
        outcome.status = 409
        return outcome
    outcome.budget_id = spec.id
    return outcome


def _version(form: dict[str, str]) -> int:
    value = form.get("version", "")
    if not value.isdigit():
        raise InvalidInput("version: the form lost the budget's version; reload the edit page and try again")
    return int(value)


def update(ctx: AppContext, who: Principal, budget_id: str, form: dict[str, str]) -> Outcome:
    outcome = Outcome(budget_id=budget_id)
    version = _version(form)
    spec = _validate(ctx, form, outcome)
    if spec is None or not _in_scope(who, spec.tenant, outcome):
        return outcome
    try:
        with transaction(ctx.factory) as session:
            current = service.get_budget(session, budget_id, tenant=who.tenant)
            if not _in_scope(who, current.spec.tenant, outcome):
                return outcome
            service.update_budget(session, spec, expected_version=version, actor=_actor(who), now=utcnow())
    except PreconditionFailed:
        with transaction(ctx.factory) as session:
            outcome.conflict = service.get_budget(session, budget_id, tenant=who.tenant)
    return outcome


def delete(ctx: AppContext, who: Principal, budget_id: str, form: dict[str, str]) -> None:
    version = _version(form)
    with transaction(ctx.factory) as session:
        current = service.get_budget(session, budget_id, tenant=who.tenant)
        if who.tenant is not None and current.spec.tenant != who.tenant:
            raise Forbidden(f"your token is bound to tenant {who.tenant!r} and cannot delete {budget_id!r}")
        service.delete_budget(session, budget_id, expected_version=version, actor=_actor(who), now=utcnow())
