"""Every table, imported in one place so Alembic and tests see the whole schema."""

from costguard.alerts.models import AlertNotification, AlertRow, ReceiverState
from costguard.auth.models import ApiToken
from costguard.budgets.models import BudgetAudit, BudgetRow
from costguard.db import Base
from costguard.evaluation.models import BudgetSpend, BudgetSpendBasis, BudgetStatusRow, EvaluationState, WorkerClaim
from costguard.usage.models import UsageBatch, UsageRecord, UsageRollup, UsageRollupPending, UsageTotal

__all__ = [
    "AlertNotification",
    "AlertRow",
    "ApiToken",
    "Base",
    "BudgetAudit",
    "BudgetRow",
    "BudgetSpend",
    "BudgetSpendBasis",
    "BudgetStatusRow",
    "EvaluationState",
    "ReceiverState",
    "UsageBatch",
    "UsageRecord",
    "UsageRollup",
    "UsageRollupPending",
    "UsageTotal",
    "WorkerClaim",
]
