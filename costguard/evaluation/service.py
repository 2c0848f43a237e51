"""One evaluation cycle: fold new usage, evaluate every budget scope, move alerts, queue notifications."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from costguard.alerts import repository as alerts_repo
from costguard.alerts.logic import FIRING, RESOLVED, AlertKey, step
from costguard.alerts.models import AlertRow
from costguard.alerts.payloads import AlertContext, alert_annotations, alert_labels, alertmanager_alert
from costguard.budgets import repository as budgets_repo
from costguard.budgets.periods import period_containing
from costguard.budgets.schemas import BudgetSpec
from costguard.config import Settings
from costguard.evaluation import logic, rollup
from costguard.evaluation.models import BudgetStatusRow
from costguard.money import money_text

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CycleReport:
    at: datetime
    folded_records: int = 0
    budgets_evaluated: int = 0
    scopes_evaluated: int = 0
    fired: int = 0
    resolved: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def receivers(settings: Settings) -> list[str]:
    return [f"alertmanager:{u}" for u in settings.alertmanager_urls] + [f"webhook:{u}" for u in settings.webhook_urls]


def run_cycle(session: Session, *, settings: Settings, now: datetime) -> CycleReport:
    """Evaluate everything as of ``now`` in the caller's transaction; one failing budget never stops the rest."""
    report = CycleReport(at=now)
    report.folded_records = rollup.fold_pending(session)
    seen: set[str] = set()
    failed_budgets: set[str] = set()
    live_status: set[tuple[str, str]] = set()
    for row in budgets_repo.list_rows(session):
        spec = budgets_repo.row_to_spec(row)
        try:
            with session.begin_nested():
                scopes = _evaluate_budget(session, spec, settings=settings, now=now, seen=seen, report=report)
            live_status.update((spec.id, tenant) for tenant in scopes)
            report.budgets_evaluated += 1
        except Exception as exc:  # one broken budget must not stop the others
            failed_budgets.add(spec.id)
            report.failures[spec.id] = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation.budget_failed", extra={"budget": spec.id})
    _resolve_unseen(session, seen=seen, skip_budgets=failed_budgets, now=now, settings=settings, report=report)
    _drop_stale_status(session, live=live_status, skip_budgets=failed_budgets)
    return report


def _evaluate_budget(
    session: Session, spec: BudgetSpec, *, settings: Settings, now: datetime, seen: set[str], report: CycleReport
) -> list[str]:
    zone = ZoneInfo(spec.timezone or settings.timezone)
    period = period_containing(spec.period, zone, now)
    windows = rollup.Windows(
        period_start=period.start,
        period_end=period.end,
        short_start=now - logic.SHORT_WINDOW,
        long_start=now - logic.LONG_WINDOW,
        now=now,
    )
    spends = rollup.scope_spend(session, tenant=spec.tenant, pipeline=spec.pipeline, model=spec.model, windows=windows)
    if spec.is_template:
        known = session.scalars(select(BudgetStatusRow.tenant).where(BudgetStatusRow.budget_id == spec.id))
        tenants = sorted(set(spends) | set(known))
    else:
        tenants = [spec.tenant]
    existing = {
        row.fingerprint: row
        for row in session.scalars(
            select(AlertRow).where(AlertRow.budget_id == spec.id, AlertRow.period == period.label)
        )
    }
    zero = rollup.ScopeSpend(Decimal(0), Decimal(0), Decimal(0))
    for tenant in tenants:
        spent = spends.get(tenant, zero)
        evaluation = logic.evaluate_scope(
            period=period,
            at=now,
            amount=spec.amount,
            thresholds=spec.thresholds,
            spend=spent.spend,
            short_window_spend=spent.short_window,
            long_window_spend=spent.long_window,
        )
        _store_status(session, spec, tenant, evaluation, now=now)
        report.scopes_evaluated += 1
        holding = {
            (c.alertname, c.threshold): c
            for c in logic.conditions(evaluation, thresholds=spec.thresholds, forecast=spec.forecast, at=now)
        }
        candidates = set(holding) | {
            (row.alertname, row.threshold) for row in existing.values() if row.tenant == tenant
        }
        for alertname, threshold in sorted(candidates):
            key = AlertKey(spec.id, tenant, spec.pipeline, spec.model, period.label, alertname, threshold)
            seen.add(key.fingerprint)
            condition = holding.get((alertname, threshold))
            ctx = _context(spec, key, evaluation, settings=settings)
            _advance(
                session,
                key,
                ctx,
                existing.get(key.fingerprint),
                condition,
                evaluation,
                settings=settings,
                now=now,
                report=report,
            )
    return tenants


def _context(spec: BudgetSpec, key: AlertKey, ev: logic.ScopeEvaluation, *, settings: Settings) -> AlertContext:
    return AlertContext(
        key=key,
        severity=logic.SEVERITY[key.alertname],
        budget_labels=dict(spec.labels),
        currency=spec.currency,
        amount=money_text(ev.amount),
        spend=money_text(ev.spend),
        forecast_spend=money_text(ev.forecast_spend),
        utilization=ev.utilization,
        forecast_utilization=ev.forecast_utilization,
        description=spec.description,
        runbook_url=spec.runbook_url or settings.runbook_url(key.alertname),
        generator_url=f"{settings.external_url}/budgets/{spec.id}",
    )


def _advance(
    session: Session,
    key: AlertKey,
    ctx: AlertContext,
    row: AlertRow | None,
    condition: logic.Condition | None,
    evaluation: logic.ScopeEvaluation,
    *,
    settings: Settings,
    now: datetime,
    report: CycleReport,
) -> None:
    moved = step(row.status if row else None, row.pending_flips if row else 0, condition is not None)
    if moved is None:
        return
    if row is not None and moved.event is None and moved.pending_flips == row.pending_flips and condition is None:
        return  # nothing changed: keep the row as it was
    if row is None:
        row = alerts_repo.add(
            session,
            AlertRow(
                fingerprint=key.fingerprint,
                alertname=key.alertname,
                budget_id=key.budget,
                tenant=key.tenant,
                pipeline=key.pipeline,
                model=key.model,
                period=key.period,
                threshold=key.threshold,
                severity=ctx.severity,
                status=moved.status,
                labels=alert_labels(ctx),
                annotations=alert_annotations(ctx),
                generator_url=ctx.generator_url,
                value=condition.value if condition else 0.0,
                pending_flips=moved.pending_flips,
                starts_at=now,
                ends_at=None,
                period_end=evaluation.period.end,
                updated_at=now,
            ),
        )
    else:
        row.pending_flips = moved.pending_flips
        if condition is not None:
            row.value = condition.value
        row.labels, row.annotations = alert_labels(ctx), alert_annotations(ctx)
        if moved.event == FIRING:
            row.status, row.starts_at, row.ends_at = FIRING, now, None
        elif moved.event == RESOLVED:
            row.status, row.ends_at = RESOLVED, now
        row.updated_at = now
        session.flush()
    if moved.event is not None:
        _notify(session, row, event=moved.event, settings=settings, now=now)
        if moved.event == FIRING:
            report.fired += 1
        else:
            report.resolved += 1


def _notify(session: Session, row: AlertRow, *, event: str, settings: Settings, now: datetime) -> None:
    """Queue the transition for every receiver; the webhook body is fixed now, as it happened."""
    body = alertmanager_alert(
        labels=row.labels,
        annotations=row.annotations,
        generator_url=row.generator_url,
        starts_at=row.starts_at,
        ends_at=row.ends_at or row.period_end,
    )
    body.update({"status": event, "fingerprint": row.fingerprint})
    if event == FIRING:
        body["endsAt"] = "0001-01-01T00:00:00Z"
    alerts_repo.enqueue(session, row, event=event, receivers=receivers(settings), now=now, payload=body)


def _resolve_unseen(
    session: Session,
    *,
    seen: set[str],
    skip_budgets: set[str],
    now: datetime,
    settings: Settings,
    report: CycleReport,
) -> None:
    """Resolve firing alerts nobody evaluated this cycle: their period ended or their budget is gone."""
    for row in alerts_repo.firing(session):
        if row.fingerprint in seen or row.budget_id in skip_budgets:
            continue
        if row.starts_at > now:
            continue  # evaluating "as of" an earlier instant cannot judge an alert that started later
        row.status, row.pending_flips, row.updated_at = RESOLVED, 0, now
        row.ends_at = min(row.period_end, now)
        session.flush()
        _notify(session, row, event=RESOLVED, settings=settings, now=now)
        report.resolved += 1


def _store_status(session: Session, spec: BudgetSpec, tenant: str, ev: logic.ScopeEvaluation, *, now: datetime) -> None:
    values = {
        "pipeline": spec.pipeline,
        "model": spec.model,
        "period": ev.period.label,
        "period_start": ev.period.start,
        "period_end": ev.period.end,
        "currency": spec.currency,
        "amount": ev.amount,
        "spend": ev.spend,
        "utilization": ev.utilization,
        "forecast_spend": ev.forecast_spend,
        "forecast_utilization": ev.forecast_utilization,
        "burn_rate_short": ev.burn_rate_short,
        "burn_rate_long": ev.burn_rate_long,
        "state": ev.state,
        "evaluated_at": now,
    }
    row = session.get(BudgetStatusRow, (spec.id, tenant))
    if row is None:
        session.add(BudgetStatusRow(budget_id=spec.id, tenant=tenant, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.flush()


def _drop_stale_status(session: Session, *, live: set[tuple[str, str]], skip_budgets: set[str]) -> None:
    stale = [
        (budget_id, tenant)
        for budget_id, tenant in session.execute(select(BudgetStatusRow.budget_id, BudgetStatusRow.tenant))
        if (budget_id, tenant) not in live and budget_id not in skip_budgets
    ]
    for budget_id, tenant in stale:
        session.execute(
            delete(BudgetStatusRow).where(BudgetStatusRow.budget_id == budget_id, BudgetStatusRow.tenant == tenant)
        )
