"""One evaluation cycle: fold new usage, evaluate every budget scope, move alerts, queue notifications."""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from costguard.alerts import repository as alerts_repo
from costguard.alerts.logic import FIRING, RESOLVED, AlertKey, Step, step, unchanged
from costguard.alerts.models import AlertRow
from costguard.alerts.payloads import AlertContext, alert_annotations, alert_labels, alertmanager_alert
from costguard.budgets import repository as budgets_repo
from costguard.budgets.periods import Period, period_containing
from costguard.budgets.schemas import BudgetSpec
from costguard.config import Settings
from costguard.evaluation import logic, rollup, set_evaluation
from costguard.evaluation import repository as evaluation_repo
from costguard.evaluation.repository import AlertState
from costguard.evaluation.scopes import BudgetWindow, RecentSpend, ScopeKey
from costguard.money import money_text

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CycleReport:
    at: datetime
    folded_records: int = 0
    folded_batches: int = 0
    budgets_evaluated: int = 0
    scopes_evaluated: int = 0
    fired: int = 0
    resolved: int = 0
    rebuilt_budgets: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def receivers(settings: Settings) -> list[str]:
    return [f"alertmanager:{u}" for u in settings.alertmanager_urls] + [f"webhook:{u}" for u in settings.webhook_urls]


@dataclass(frozen=True, slots=True)
class _Plan:
    spec: BudgetSpec
    period: Period
    # What the set-based cycle stores of it (``budget_plans``).
    row: set_evaluation.PlanRow
    window: BudgetWindow


@dataclass(slots=True)
class _Inputs:
    """Everything a cycle reads, fetched set-based up front: the per-budget loop then issues no reads."""

    spend: dict[ScopeKey, Decimal]
    recent: dict[ScopeKey, RecentSpend]
    known: set[ScopeKey]
    alerts: dict[tuple[str, str], list[AlertState]]
    tenants: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Index the tenants each budget has seen: a template's scopes are every one of them."""
        for budget_id, tenant in itertools.chain(self.spend, self.recent, self.known):
            self.tenants.setdefault(budget_id, set()).add(tenant)


def run_cycle(session: Session, *, settings: Settings, now: datetime) -> CycleReport:
    """Evaluate everything as of ``now`` in the caller's transaction; one failing budget never stops the rest."""
    report = CycleReport(at=now)
    plans = _plan(session, settings=settings, now=now, report=report)
    windows = [plan.window for plan in plans]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        set_evaluation.store_plans(session, [plan.row for plan in plans])
    synced = rollup.sync(session, windows, now=now)
    report.folded_records, report.rebuilt_budgets = synced.folded_records, synced.rebuilt_budgets
    report.folded_batches = synced.folded_batches
    if postgres:
        try:
            with session.begin_nested():
                evaluated_in_sql = set_evaluation.evaluate(session, now=now)
        except Exception:  # e.g. a numeric overflow in one budget: judge this cycle budget by budget
            log.warning("evaluation.set_based_failed", exc_info=True)
        else:
            _run_candidates(session, plans, evaluated_in_sql, settings=settings, now=now, report=report)
            return report
    inputs = _read_inputs(session, windows, now=now)
    seen: set[str] = set()
    evaluated: list[tuple[_Plan, list[_Scope]]] = []
    moves: list[tuple[_Plan, list[_Move]]] = []
    for plan in plans:
        try:
            scopes = _evaluate_budget(plan, inputs, now=now)
            budget_moves = [m for scope in scopes for m in _alert_moves(plan, scope, inputs, seen=seen)]
        except Exception as exc:  # one broken budget must not stop the others
            report.failures[plan.spec.id] = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation.budget_failed", extra={"budget": plan.spec.id})
            continue
        evaluated.append((plan, scopes))
        if budget_moves:
            moves.append((plan, budget_moves))
    _apply_moves(session, moves, settings=settings, now=now, report=report)
    live_status: set[ScopeKey] = set()
    statuses: list[dict[str, Any]] = []
    for plan, scopes in evaluated:
        if plan.spec.id in report.failures:
            continue
        statuses.extend(_status_row(plan.spec, e.tenant, e.evaluation, now=now) for e in scopes)
        live_status.update((plan.spec.id, e.tenant) for e in scopes)
        report.budgets_evaluated += 1
        report.scopes_evaluated += len(scopes)
    evaluation_repo.upsert_statuses(session, statuses)
    failed = set(report.failures)
    _resolve_unseen(session, inputs=inputs, seen=seen, skip_budgets=failed, now=now, settings=settings, report=report)
    stale = [key for key in inputs.known if key not in live_status and key[0] not in failed]
    evaluation_repo.delete_statuses(session, stale)
    return report


def _plan_row(spec: BudgetSpec, period: Period) -> set_evaluation.PlanRow:
    return set_evaluation.PlanRow(
        budget_id=spec.id,
        tenant=spec.tenant,
        pipeline=spec.pipeline,
        model=spec.model,
        template=spec.is_template,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        currency=spec.currency,
        amount=spec.amount,
        thresholds=tuple(spec.thresholds),
        labels=tuple(logic.threshold_label(t) for t in spec.thresholds),
        forecast=spec.forecast,
    )


def _run_candidates(
    session: Session,
    plans: list[_Plan],
    evaluated: set_evaluation.Evaluated,
    *,
    settings: Settings,
    now: datetime,
    report: CycleReport,
) -> None:
    """After the set-based pass: judge only the scopes whose alerts may move, exactly as the Python path does."""
    by_budget: dict[str, list[str]] = defaultdict(list)
    for candidate in evaluated.candidates:
        by_budget[candidate.key[0]].append(candidate.key[1])
    alerts: dict[tuple[str, str], list[AlertState]] = defaultdict(list)
    for row in set_evaluation.candidate_alerts(session, [c.key for c in evaluated.candidates], now=now):
        alerts[(row.budget_id, row.tenant)].append(row)
    inputs = _Inputs(
        spend={c.key: c.spend for c in evaluated.candidates},
        recent={c.key: c.recent for c in evaluated.candidates},
        known=set(),
        alerts=alerts,
    )
    seen: set[str] = set()
    moves: list[tuple[_Plan, list[_Move]]] = []
    planned_failures = len(report.failures)
    for plan in plans:
        tenants = by_budget.get(plan.spec.id)
        if not tenants:
            continue
        try:
            scopes = _evaluate_scopes(plan, tenants, inputs, now=now)
            budget_moves = [m for scope in scopes for m in _alert_moves(plan, scope, inputs, seen=seen)]
        except Exception as exc:  # one broken budget must not stop the others
            report.failures[plan.spec.id] = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation.budget_failed", extra={"budget": plan.spec.id})
            continue
        if budget_moves:
            moves.append((plan, budget_moves))
    _apply_moves(session, moves, settings=settings, now=now, report=report)
    failed = sorted(report.failures)
    unseen = set_evaluation.unseen_firing(session, now=now, failed=failed)
    _resolve(session, unseen, settings=settings, now=now, report=report)
    set_evaluation.delete_stale_statuses(session, failed=failed)
    report.budgets_evaluated = len(plans) - (len(report.failures) - planned_failures)
    report.scopes_evaluated = evaluated.scopes


@dataclass(frozen=True, slots=True)
class _PlanSet:
    """One database's budget rows as last read, with their row versions, and the plans made from
    them: good while no version changed and ``now`` is in every period."""

    versions: tuple[Any, ...] | None
    rows: Sequence[Any]
    timezone: str
    valid_from: datetime  # the latest period start
    valid_until: datetime  # the earliest period end
    plans: list[_Plan]
    failures: dict[str, str]


# Reading and converting 5,000 budget rows, and planning them, costs more than asking whether
# any of them changed (PostgreSQL only: elsewhere there are no row versions to ask).
_PLAN_SETS: dict[str, _PlanSet] = {}


def _plan(session: Session, *, settings: Settings, now: datetime, report: CycleReport) -> list[_Plan]:
    """Each budget's spec and current period; a budget that cannot even be read is reported, not fatal."""
    versions = budgets_repo.row_versions(session)
    database = str(session.get_bind().engine.url)
    cached = _PLAN_SETS.get(database)
    if versions is not None and cached is not None and cached.versions == versions:
        if cached.timezone == settings.timezone and cached.valid_from <= now < cached.valid_until:
            report.failures.update(cached.failures)
            return cached.plans
        rows = cached.rows
    else:
        rows = budgets_repo.plain_rows(session)
    plans: list[_Plan] = []
    failures: dict[str, str] = {}
    periods: dict[tuple[str, str], Period] = {}  # every budget of a kind and zone shares its period
    for row in rows:
        try:
            identity = _identity(row)
            spec = _spec(identity, row)
            kind, zone = spec.period, spec.timezone or settings.timezone
            period = periods.get((kind, zone))
            if period is None:
                period = periods[(kind, zone)] = period_containing(kind, ZoneInfo(zone), now)
            plans.append(_cached_plan(identity, spec, period))
        except Exception as exc:
            failures[row.id] = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation.budget_failed", extra={"budget": row.id})
    report.failures.update(failures)
    if versions is not None and periods:
        if len(_PLAN_SETS) >= 16:
            _PLAN_SETS.clear()
        starts, ends = [p.start for p in periods.values()], [p.end for p in periods.values()]
        _PLAN_SETS[database] = _PlanSet(versions, rows, settings.timezone, max(starts), min(ends), plans, failures)
    return plans


# Parsed budgets and their plans by everything that makes them: validating 5,000 specs each
# cycle costs more than the evaluation itself. Bounded: cleared when they outgrow the budgets seen.
_SPECS: dict[tuple[Any, ...], BudgetSpec] = {}
_PLANS: dict[tuple[tuple[Any, ...], Period], _Plan] = {}
_CACHE_MAX = 100_000


def _identity(row: Any) -> tuple[Any, ...]:
    """Everything stored of a budget (a ``plain_rows`` row is a tuple of every column): any change misses."""
    return tuple(row)


def _spec(identity: tuple[Any, ...], row: Any) -> BudgetSpec:
    spec = _SPECS.get(identity)
    if spec is None:
        if len(_SPECS) >= _CACHE_MAX:
            _SPECS.clear()
        spec = _SPECS[identity] = budgets_repo.plain_spec(row)
    return spec


def _cached_plan(identity: tuple[Any, ...], spec: BudgetSpec, period: Period) -> _Plan:
    plan = _PLANS.get((identity, period))
    if plan is None:
        if len(_PLANS) >= _CACHE_MAX:
            _PLANS.clear()
        window = BudgetWindow(spec.id, spec.tenant, spec.pipeline, spec.model, period.start, period.end)
        plan = _PLANS[(identity, period)] = _Plan(spec, period, _plan_row(spec, period), window)
    return plan


def _read_inputs(session: Session, windows: list[BudgetWindow], *, now: datetime) -> _Inputs:
    alerts: dict[tuple[str, str], list[AlertState]] = defaultdict(list)
    for row in evaluation_repo.alerts_of_periods_ending_after(session, now):
        alerts[(row.budget_id, row.tenant)].append(row)
    return _Inputs(
        spend=rollup.budget_spend(session),
        recent=rollup.recent_spend(
            session, windows, short_start=now - logic.SHORT_WINDOW, long_start=now - logic.LONG_WINDOW, now=now
        ),
        known=evaluation_repo.status_keys(session),
        alerts=alerts,
    )


@dataclass(frozen=True, slots=True)
class _Scope:
    tenant: str
    evaluation: logic.ScopeEvaluation
    holding: dict[tuple[str, str], logic.Condition]


def _evaluate_budget(plan: _Plan, inputs: _Inputs, *, now: datetime) -> list[_Scope]:
    """Pure: the budget's scopes (one per tenant for templates) judged from the inputs read up front."""
    spec = plan.spec
    tenants = sorted(inputs.tenants.get(spec.id, ())) if spec.is_template else [spec.tenant]
    return _evaluate_scopes(plan, tenants, inputs, now=now)


def _evaluate_scopes(plan: _Plan, tenants: list[str], inputs: _Inputs, *, now: datetime) -> list[_Scope]:
    spec = plan.spec
    scopes: list[_Scope] = []
    for tenant in tenants:
        recent = inputs.recent.get((spec.id, tenant))
        evaluation = logic.evaluate_scope(
            period=plan.period,
            at=now,
            amount=spec.amount,
            thresholds=spec.thresholds,
            spend=inputs.spend.get((spec.id, tenant), Decimal(0)),
            short_window_spend=recent.short_window if recent else Decimal(0),
            long_window_spend=recent.long_window if recent else Decimal(0),
        )
        holding = {
            (c.alertname, c.threshold): c
            for c in logic.conditions(evaluation, thresholds=spec.thresholds, forecast=spec.forecast, at=now)
        }
        scopes.append(_Scope(tenant, evaluation, holding))
    return scopes


@dataclass(frozen=True, slots=True)
class _Move:
    """One alert that this cycle creates, changes or notifies."""

    key: AlertKey
    row: AlertState | None
    condition: logic.Condition | None
    evaluation: logic.ScopeEvaluation
    step: Step


def _alert_moves(plan: _Plan, scope: _Scope, inputs: _Inputs, *, seen: set[str]) -> list[_Move]:
    """Pure: the alerts of one scope that must be written this cycle (most cycles: none)."""
    spec, period = plan.spec, plan.period
    existing = {
        row.fingerprint: row for row in inputs.alerts.get((spec.id, scope.tenant), []) if row.period == period.label
    }
    candidates = set(scope.holding) | {(row.alertname, row.threshold) for row in existing.values()}
    moves: list[_Move] = []
    for alertname, threshold in sorted(candidates):
        key = AlertKey(spec.id, scope.tenant, spec.pipeline, spec.model, period.label, alertname, threshold)
        seen.add(key.fingerprint)
        row = existing.get(key.fingerprint)
        condition = scope.holding.get((alertname, threshold))
        moved = step(row.status if row else None, row.pending_flips if row else 0, condition is not None)
        if moved is None:
            continue
        if row is not None and unchanged(row.pending_flips, row.value, moved, condition.value if condition else None):
            continue
        moves.append(_Move(key, row, condition, scope.evaluation, moved))
    return moves


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


def _apply_moves(
    session: Session,
    moves: list[tuple[_Plan, list[_Move]]],
    *,
    settings: Settings,
    now: datetime,
    report: CycleReport,
) -> None:
    """Write every alert move in one batch; if the batch fails, redo it budget by budget to isolate the culprit."""
    if not moves:
        return
    try:
        with session.begin_nested():
            events = _write_moves(
                session, [(plan, m) for plan, budget_moves in moves for m in budget_moves], settings=settings, now=now
            )
        _count(events, report)
        return
    except Exception:
        log.warning("evaluation.alert_batch_failed", exc_info=True)
    for plan, budget_moves in moves:
        try:
            with session.begin_nested():
                events = _write_moves(session, [(plan, m) for m in budget_moves], settings=settings, now=now)
            _count(events, report)
        except Exception as exc:  # one broken budget must not stop the others
            report.failures[plan.spec.id] = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation.budget_failed", extra={"budget": plan.spec.id})


def _count(events: list[str], report: CycleReport) -> None:
    report.fired += events.count(FIRING)
    report.resolved += events.count(RESOLVED)


def _write_moves(session: Session, items: list[tuple[_Plan, _Move]], *, settings: Settings, now: datetime) -> list[str]:
    """Create or change the alerts and queue their notifications, each kind in one batched statement."""
    created: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    transitions: list[tuple[dict[str, Any], str]] = []
    for plan, move in items:
        values = _moved_values(plan, move, settings=settings, now=now)
        (changed if move.row is not None else created).append(values)
        if move.step.event is not None:
            transitions.append((values, move.step.event))
    ids = alerts_repo.insert_alerts(session, created)
    for values in created:
        values["id"] = ids[values["fingerprint"]]
    alerts_repo.update_alerts(session, changed)
    _notify(session, [(values, event) for values, event in transitions], settings=settings, now=now)
    return [event for _values, event in transitions]


def _moved_values(plan: _Plan, move: _Move, *, settings: Settings, now: datetime) -> dict[str, Any]:
    """The columns of the alert after ``move``: every column of a new alert, the changed ones of a stored one."""
    key, condition, evaluation, moved, stored = move.key, move.condition, move.evaluation, move.step, move.row
    ctx = _context(plan.spec, key, evaluation, settings=settings)
    values: dict[str, Any] = {
        "fingerprint": key.fingerprint,
        "pending_flips": moved.pending_flips,
        "labels": alert_labels(ctx),
        "annotations": alert_annotations(ctx),
        "generator_url": ctx.generator_url,
        "period_end": evaluation.period.end,
        "updated_at": now,
    }
    if stored is None:
        return values | {
            "alertname": key.alertname,
            "budget_id": key.budget,
            "tenant": key.tenant,
            "pipeline": key.pipeline,
            "model": key.model,
            "period": key.period,
            "threshold": key.threshold,
            "severity": ctx.severity,
            "status": moved.status,
            "value": condition.value if condition else 0.0,
            "starts_at": now,
            "ends_at": None,
        }
    values |= {"id": stored.id, "starts_at": stored.starts_at}
    if condition is not None:
        values["value"] = condition.value
    if moved.event == FIRING:
        values |= {"status": FIRING, "starts_at": now, "ends_at": None}
    elif moved.event == RESOLVED:
        values |= {"status": RESOLVED, "ends_at": now}
    return values


def _notify(
    session: Session, transitions: list[tuple[dict[str, Any], str]], *, settings: Settings, now: datetime
) -> None:
    """Queue each transition for every receiver; the webhook body is fixed now, as it happened."""
    queued: list[tuple[int, str, dict[str, Any]]] = []
    for alert, event in transitions:
        body = alertmanager_alert(
            labels=alert["labels"],
            annotations=alert["annotations"],
            generator_url=alert["generator_url"],
            starts_at=alert["starts_at"],
            ends_at=alert.get("ends_at") or alert["period_end"],
        )
        body.update({"status": event, "fingerprint": alert["fingerprint"]})
        if event == FIRING:
            body["endsAt"] = "0001-01-01T00:00:00Z"
        queued.append((alert["id"], event, body))
    alerts_repo.enqueue(session, queued, receivers=receivers(settings), now=now)


def _resolve_unseen(
    session: Session,
    *,
    inputs: _Inputs,
    seen: set[str],
    skip_budgets: set[str],
    now: datetime,
    settings: Settings,
    report: CycleReport,
) -> None:
    """Resolve firing alerts nobody evaluated this cycle: their period ended or their budget is gone."""
    open_periods: list[AlertState | AlertRow] = [
        state for states in inputs.alerts.values() for state in states if state.status == FIRING
    ]
    ended = evaluation_repo.firing_alerts_of_periods_ended_by(session, now)
    candidates = itertools.chain(open_periods, ended)
    ids = {alert.id for alert in candidates if _unseen(alert, seen=seen, skip_budgets=skip_budgets, now=now)}
    _resolve(session, sorted(ids), settings=settings, now=now, report=report)


def _resolve(session: Session, ids: list[int], *, settings: Settings, now: datetime, report: CycleReport) -> None:
    rows = alerts_repo.resolve_alerts(session, ids, now=now)
    _notify(session, [(_columns(row), RESOLVED) for row in rows], settings=settings, now=now)
    report.resolved += len(rows)


def _columns(row: AlertRow) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in AlertRow.__table__.columns}


def _unseen(alert: AlertState | AlertRow, *, seen: set[str], skip_budgets: set[str], now: datetime) -> bool:
    # Evaluating "as of" an earlier instant cannot judge an alert that started later.
    return alert.fingerprint not in seen and alert.budget_id not in skip_budgets and alert.starts_at <= now


def _status_row(spec: BudgetSpec, tenant: str, ev: logic.ScopeEvaluation, *, now: datetime) -> dict[str, Any]:
    return {
        "budget_id": spec.id,
        "tenant": tenant,
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
