"""SQL to read evaluated statuses and the cycle's bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from costguard.evaluation.models import BudgetStatusRow, EvaluationState


def statuses(session: Session, *, tenant: str | None = None, budget_id: str | None = None) -> Sequence[BudgetStatusRow]:
    query = select(BudgetStatusRow).order_by(BudgetStatusRow.budget_id, BudgetStatusRow.tenant)
    if tenant is not None:
        query = query.where(BudgetStatusRow.tenant == tenant)
    if budget_id is not None:
        query = query.where(or_(BudgetStatusRow.budget_id == budget_id))
    return session.scalars(query).all()


def evaluation_state(session: Session, name: str = "evaluation") -> EvaluationState | None:
    return session.get(EvaluationState, name)
