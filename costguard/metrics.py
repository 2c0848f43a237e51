"""Prometheus metrics: database state rendered at scrape time, plus this process's instruments.

Budget state lives in the database, so every replica exports the same values. With thousands of
budgets a scrape carries tens of thousands of samples; they are written straight to the text
format with each scope's label string built once, which keeps a 5,000-budget scrape well under a
second (``bench/scrape.py``). The process's own counters go through prometheus_client as usual.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from costguard import metrics_repository
from costguard.alerts import repository as alerts_repo
from costguard.config import Settings
from costguard.evaluation import repository as evaluation_repo
from costguard.evaluation.logic import threshold_label

STATES = ("ok", "approaching", "exceeded")

# Process instruments: rejections never reach the database, so they are counted where they happen.
USAGE_REJECTED = Counter(
    "costguard_usage_records_rejected",
    "Usage records refused at ingestion, by reason (invalid, conflict, too_large, forbidden).",
    ["reason"],
    registry=None,
)
# Every reason exists from the start at 0, so rate() and the rejection alert see the first refusal.
REJECTION_REASONS = ("invalid", "conflict", "too_large", "forbidden")
for _reason in REJECTION_REASONS:
    USAGE_REJECTED.labels(_reason)


def _value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(float(number))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_string(labels: dict[str, str]) -> str:
    """``a="1",b="2"``: built once per scope and reused for every sample of it."""
    return ",".join(f'{name}="{_escape(str(value))}"' for name, value in labels.items())


class Family:
    """One metric family in the text exposition format, appended to sample by sample."""

    __slots__ = ("kind", "lines", "name")

    def __init__(self, name: str, documentation: str, kind: str = "gauge") -> None:
        self.name = name
        self.kind = kind
        # As prometheus_client writes counters: HELP and TYPE name the ``_total`` series.
        header = f"{name}_total" if kind == "counter" else name
        self.lines = [f"# HELP {header} {_escape_help(documentation)}\n# TYPE {header} {kind}\n"]

    def add(self, labels: str, value: float, *, suffix: str = "") -> None:
        sample = self.name + suffix
        self.lines.append(f"{sample}{{{labels}}} {_value(value)}\n" if labels else f"{sample} {_value(value)}\n")

    def text(self) -> str:
        return "".join(self.lines)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class DatabaseMetrics:
    """Budgets, cost per scope and the guard's own health, read from the database at each scrape."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings

    def render(self) -> str:
        with self._factory() as session:
            families = [*self._budget_metrics(session), *self._cost_metrics(session), *self._health_metrics(session)]
        return "".join(family.text() for family in families)

    def _budget_metrics(self, session: Session) -> Iterator[Family]:
        spend = Family("costguard_budget_spend", "Spend in the budget's current period, in the budget's currency.")
        amount = Family("costguard_budget_amount", "The budget amount for the current period.")
        utilization = Family("costguard_budget_utilization_ratio", "Spend divided by amount (1 = budget used up).")
        forecast = Family("costguard_budget_forecast_ratio", "Projected end-of-period spend divided by amount.")
        burn = Family(
            "costguard_budget_burn_rate_ratio",
            "Spend pace over a window as a multiple of the pace that uses exactly the budget over the period.",
        )
        state = Family("costguard_budget_state", "1 for the budget scope's current state, 0 for the others.")
        thresholds = Family(
            "costguard_budget_threshold_ratio",
            "The budget's alert thresholds (approaching ones and 1 for exceeded), for Prometheus-side alert rules.",
        )
        forecast_on = Family(
            "costguard_budget_forecast_enabled", "1 if the budget alerts on its forecast (forecast: true), else 0."
        )
        starts = Family("costguard_budget_period_start_timestamp_seconds", "Start of the current period (Unix time).")
        ends = Family("costguard_budget_period_end_timestamp_seconds", "End of the current period (Unix time).")
        budgets = metrics_repository.budget_settings(session)
        for row in metrics_repository.scope_statuses(session):
            budget = budgets.get(row.budget_id)
            labels = label_string(
                {
                    **(budget.labels if budget else {}),
                    "budget": row.budget_id,
                    "tenant": row.tenant,
                    "pipeline": row.pipeline,
                    "model": row.model,
                    "period": row.period,
                    "currency": row.currency,
                }
            )
            spend.add(labels, float(row.spend))
            amount.add(labels, float(row.amount))
            utilization.add(labels, row.utilization)
            forecast.add(labels, row.forecast_utilization)
            burn.add(f'{labels},window="1h"', row.burn_rate_short)
            burn.add(f'{labels},window="6h"', row.burn_rate_long)
            for name in STATES:
                state.add(f'{labels},state="{name}"', 1.0 if row.state == name else 0.0)
            for value in sorted({*(budget.thresholds if budget else ()), 1.0}):
                thresholds.add(f'{labels},threshold="{threshold_label(value)}"', float(value))
            forecast_on.add(labels, 1.0 if budget is not None and budget.forecast else 0.0)
            starts.add(labels, row.period_start.timestamp())
            ends.add(labels, row.period_end.timestamp())
        yield from (spend, amount, utilization, forecast, burn, state, thresholds, forecast_on, starts, ends)

    def _cost_metrics(self, session: Session) -> Iterator[Family]:
        names = self._settings.cost_metric_labels
        usage: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        adjustments: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        records = 0
        last_record = 0.0
        for total in metrics_repository.usage_totals(session):
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
            metric = Family(name, doc, "counter")
            for key, value in sorted(sums.items()):
                labels = {**dict(zip(names, key, strict=True)), "currency": self._settings.currency}
                metric.add(label_string(labels), float(value), suffix="_total")
            yield metric
        ingested = Family("costguard_usage_records_ingested", "Usage records stored (duplicates excluded).", "counter")
        ingested.add("", float(records), suffix="_total")
        yield ingested
        feed = Family(
            "costguard_usage_last_record_timestamp_seconds",
            "Start of the newest 15-minute bucket holding usage (Unix time); 0 before any usage.",
        )
        feed.add("", last_record)
        yield feed

    def _health_metrics(self, session: Session) -> Iterator[Family]:
        state = evaluation_repo.evaluation_state(session)
        duration = Family("costguard_evaluation_duration_seconds", "Wall time of the last evaluation cycle.")
        last = Family(
            "costguard_last_evaluation_timestamp_seconds", "When the last evaluation cycle finished (Unix time)."
        )
        failed = Family("costguard_evaluation_budgets_failed", "Budgets whose evaluation failed in the last cycle.")
        duration.add("", state.last_duration_seconds if state else 0.0)
        last.add("", state.last_finished_at.timestamp() if state else 0.0)
        failed.add("", float(state.budgets_failed) if state else 0.0)
        yield from (duration, last, failed)
        sent = Family("costguard_alert_notifications", "Notifications accepted by each receiver.", "counter")
        failures = Family("costguard_alert_notification_failures", "Failed delivery attempts per receiver.", "counter")
        pending = Family("costguard_alert_outbox_pending", "Notifications waiting in the outbox per receiver.")
        dead = Family("costguard_alert_outbox_dead", "Notifications given up after the dead-letter age, per receiver.")
        states = alerts_repo.receiver_states(session)
        pending_counts = alerts_repo.pending_counts(session)
        dead_counts = alerts_repo.dead_counts(session)
        receivers = sorted({s.receiver for s in states} | set(pending_counts) | set(dead_counts))
        by_name = {s.receiver: s for s in states}
        for receiver in receivers:
            labels = label_string({"receiver": receiver})
            known = by_name.get(receiver)
            sent.add(labels, float(known.notifications_total if known else 0), suffix="_total")
            failures.add(labels, float(known.failures_total if known else 0), suffix="_total")
            pending.add(labels, float(pending_counts.get(receiver, 0)))
            dead.add(labels, float(dead_counts.get(receiver, 0)))
        yield from (sent, failures, pending, dead)


def build_registry(factory: sessionmaker[Session], settings: Settings) -> CollectorRegistry:
    """This process's own instruments: ingestion rejections and resource usage."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessCounters())
    ProcessCollector(registry=registry)
    return registry


def exposition(factory: sessionmaker[Session], settings: Settings, registry: CollectorRegistry) -> bytes:
    """The whole /metrics body: the database's families, then this process's."""
    return DatabaseMetrics(factory, settings).render().encode() + generate_latest(registry)


class _ProcessCounters(Collector):
    """This process's own counters, kept off the default registry so tests can build many apps."""

    def collect(self) -> Iterator[Metric]:
        yield from USAGE_REJECTED.collect()
