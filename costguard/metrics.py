"""Prometheus metrics: database state read at scrape time by a Collector, plus process instruments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from costguard.alerts import repository as alerts_repo
from costguard.budgets import repository as budgets_repo
from costguard.config import Settings
from costguard.evaluation import repository as evaluation_repo
from costguard.evaluation import rollup
from costguard.evaluation.logic import threshold_label

STATES = ("ok", "approaching", "exceeded")

# Process instruments: rejections never reach the database, so they are counted where they happen.
USAGE_REJECTED = Counter(
    "costguard_usage_records_rejected",
    "Usage records refused at ingestion, by reason (invalid, conflict, too_large, forbidden).",
    ["reason"],
    registry=None,
)


def _metric(name: str, documentation: str, kind: str = "gauge") -> Metric:
    return Metric(name, documentation, kind)


class CostguardCollector(Collector):
    """Exports budgets, cost per scope and the guard's own health from the database at each scrape."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings

    def describe(self) -> list[Metric]:
        return []  # values come from the database; do not collect at registration

    def collect(self) -> Iterator[Metric]:
        with self._factory() as session:
            yield from self._budget_metrics(session)
            yield from self._cost_metrics(session)
            yield from self._health_metrics(session)

    def _budget_metrics(self, session: Session) -> Iterator[Metric]:
        spend = _metric("costguard_budget_spend", "Spend in the budget's current period, in the budget's currency.")
        amount = _metric("costguard_budget_amount", "The budget amount for the current period.")
        utilization = _metric("costguard_budget_utilization_ratio", "Spend divided by amount (1 = budget used up).")
        forecast = _metric("costguard_budget_forecast_ratio", "Projected end-of-period spend divided by amount.")
        burn = _metric(
            "costguard_budget_burn_rate_ratio",
            "Spend pace over a window as a multiple of the pace that uses exactly the budget over the period.",
        )
        state = _metric("costguard_budget_state", "1 for the budget scope's current state, 0 for the others.")
        thresholds = _metric(
            "costguard_budget_threshold_ratio",
            "The budget's alert thresholds (approaching ones and 1 for exceeded), for Prometheus-side alert rules.",
        )
        forecast_on = _metric(
            "costguard_budget_forecast_enabled", "1 if the budget alerts on its forecast (forecast: true), else 0."
        )
        starts = _metric("costguard_budget_period_start_timestamp_seconds", "Start of the current period (Unix time).")
        ends = _metric("costguard_budget_period_end_timestamp_seconds", "End of the current period (Unix time).")
        budgets = {row.id: row for row in budgets_repo.list_rows(session)}
        for row in evaluation_repo.statuses(session):
            budget = budgets.get(row.budget_id)
            labels = {
                **(budget.labels if budget else {}),
                "budget": row.budget_id,
                "tenant": row.tenant,
                "pipeline": row.pipeline,
                "model": row.model,
                "period": row.period,
                "currency": row.currency,
            }
            spend.add_sample("costguard_budget_spend", labels, float(row.spend))
            amount.add_sample("costguard_budget_amount", labels, float(row.amount))
            utilization.add_sample("costguard_budget_utilization_ratio", labels, row.utilization)
            forecast.add_sample("costguard_budget_forecast_ratio", labels, row.forecast_utilization)
            burn.add_sample("costguard_budget_burn_rate_ratio", {**labels, "window": "1h"}, row.burn_rate_short)
            burn.add_sample("costguard_budget_burn_rate_ratio", {**labels, "window": "6h"}, row.burn_rate_long)
            for name in STATES:
                state.add_sample("costguard_budget_state", {**labels, "state": name}, 1.0 if row.state == name else 0.0)
            for value in sorted({*(budget.thresholds if budget else ()), 1.0}):
                threshold = {**labels, "threshold": threshold_label(value)}
                thresholds.add_sample("costguard_budget_threshold_ratio", threshold, float(value))
            forecast_on.add_sample(
                "costguard_budget_forecast_enabled", labels, 1.0 if budget is not None and budget.forecast else 0.0
            )
            starts.add_sample("costguard_budget_period_start_timestamp_seconds", labels, row.period_start.timestamp())
            ends.add_sample("costguard_budget_period_end_timestamp_seconds", labels, row.period_end.timestamp())
        yield from (spend, amount, utilization, forecast, burn, state, thresholds, forecast_on, starts, ends)

    def _cost_metrics(self, session: Session) -> Iterator[Metric]:
        names = self._settings.cost_metric_labels
        usage: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        adjustments: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        records = 0
        last_record = 0.0
        for total in rollup.totals(session):
            scope = {"tenant": total.tenant, "pipeline": total.pipeline, "model": total.model}
            key = tuple(scope[name] for name in names)
            (adjustments if total.kind == "adjustment" else usage)[key] += total.cost
            records += total.records
            last_record = max(last_record, total.last_timestamp.timestamp())
        for name, doc, sums in (
            ("costguard_cost", "Cost of usage records by scope (label set: COSTGUARD_COST_METRIC_LABELS).", usage),
            (
                "costguard_cost_adjustments",
                "Sum of adjustment records (credits, refunds, corrections) by scope.",
                adjustments,
            ),
        ):
            metric = _metric(name, doc, "counter")
            for key, value in sorted(sums.items()):
                labels = {**dict(zip(names, key, strict=True)), "currency": self._settings.currency}
                metric.add_sample(f"{name}_total", labels, float(value))
            yield metric
        ingested = _metric("costguard_usage_records_ingested", "Usage records stored (duplicates excluded).", "counter")
        ingested.add_sample("costguard_usage_records_ingested_total", {}, float(records))
        yield ingested
        feed = _metric(
            "costguard_usage_last_record_timestamp_seconds",
            "Start of the newest 15-minute bucket holding usage (Unix time); 0 before any usage.",
        )
        feed.add_sample("costguard_usage_last_record_timestamp_seconds", {}, last_record)
        yield feed

    def _health_metrics(self, session: Session) -> Iterator[Metric]:
        state = evaluation_repo.evaluation_state(session)
        duration = _metric("costguard_evaluation_duration_seconds", "Wall time of the last evaluation cycle.")
        last = _metric(
            "costguard_last_evaluation_timestamp_seconds", "When the last evaluation cycle finished (Unix time)."
        )
        failed = _metric("costguard_evaluation_budgets_failed", "Budgets whose evaluation failed in the last cycle.")
        duration.add_sample("costguard_evaluation_duration_seconds", {}, state.last_duration_seconds if state else 0.0)
        last.add_sample(
            "costguard_last_evaluation_timestamp_seconds", {}, state.last_finished_at.timestamp() if state else 0.0
        )
        failed.add_sample("costguard_evaluation_budgets_failed", {}, float(state.budgets_failed) if state else 0.0)
        yield from (duration, last, failed)
        sent = _metric("costguard_alert_notifications", "Notifications accepted by each receiver.", "counter")
        failures = _metric("costguard_alert_notification_failures", "Failed delivery attempts per receiver.", "counter")
        pending = _metric("costguard_alert_outbox_pending", "Notifications waiting in the outbox per receiver.")
        dead = _metric("costguard_alert_outbox_dead", "Notifications given up after the dead-letter age, per receiver.")
        states = alerts_repo.receiver_states(session)
        pending_counts = alerts_repo.pending_counts(session)
        dead_counts = alerts_repo.dead_counts(session)
        receivers = sorted({s.receiver for s in states} | set(pending_counts) | set(dead_counts))
        by_name = {s.receiver: s for s in states}
        for receiver in receivers:
            labels = {"receiver": receiver}
            known = by_name.get(receiver)
            sent.add_sample(
                "costguard_alert_notifications_total", labels, float(known.notifications_total if known else 0)
            )
            failures.add_sample(
                "costguard_alert_notification_failures_total", labels, float(known.failures_total if known else 0)
            )
            pending.add_sample("costguard_alert_outbox_pending", labels, float(pending_counts.get(receiver, 0)))
            dead.add_sample("costguard_alert_outbox_dead", labels, float(dead_counts.get(receiver, 0)))
        yield from (sent, failures, pending, dead)


def build_registry(factory: sessionmaker[Session], settings: Settings) -> CollectorRegistry:
    """A registry with the database collector, this process's counters and its resource usage."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CostguardCollector(factory, settings))
    registry.register(_ProcessCounters())
    ProcessCollector(registry=registry)
    return registry


class _ProcessCounters(Collector):
    """This process's own counters, kept off the default registry so tests can build many apps."""

    def collect(self) -> Iterator[Metric]:
        yield from USAGE_REJECTED.collect()
