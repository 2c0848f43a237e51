"""The Prometheus rule file printed by ``costguard rules``. Pure: settings in, YAML text out.

Two files, never loaded together by default:

- the default file: recording rules for cost rates per tenant, pipeline and model, the guard's
  self-monitoring alerts and ``CostSpendAnomaly``. Prometheus evaluates these in every deployment.
- ``--budget-alerts``: alerting rules equivalent to costguard's own budget alerts, for teams that
  prefer Prometheus to evaluate them. Use it *instead of* costguard's delivery
  (``COSTGUARD_ALERTMANAGER_URLS`` empty), or every budget alert reaches Alertmanager twice.

Every series costguard exports is the same on every replica (it is read from the database), so each
expression first takes ``max without (instance)`` to count a scope once however many replicas are scraped.
"""

from __future__ import annotations

from typing import Any

import yaml

from costguard.config import Settings
from costguard.evaluation import logic

SCOPE = ("budget", "tenant", "pipeline", "model", "period")
RATE_WINDOWS = ("5m", "1h")
# CostSpendAnomaly: the last hour's rate against the scope's 7-day average rate, ignoring scopes
# that spend less than the minimum per hour (noise) or have no 7 days of history (no baseline yet).
ANOMALY_FACTOR = 4
ANOMALY_MIN_PER_HOUR = 1
ANOMALY_BASELINE = "7d"
# Self-monitoring: how long a condition must hold before the alert fires.
FOR_EVALUATION_STALE = "2m"
FOR_FEED_STALE = "10m"
FOR_DELIVERY_FAILING = "10m"
FOR_REJECTIONS = "15m"
FOR_ANOMALY = "15m"
# Usage timestamps are folded into 15-minute buckets: a healthy feed reads up to one bucket behind.
USAGE_BUCKET_SECONDS = 900


def _dedup(series: str) -> str:
    return f"max without (instance) ({series})"


def _seconds(value: float) -> str:
    return format(round(value, 3), "g")


def _alert(
    name: str,
    expr: str,
    *,
    settings: Settings,
    severity: str,
    summary: str,
    description: str,
    for_: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary, "description": description, "runbook_url": settings.runbook_url(name)}
    return rule


def recording_rules(settings: Settings) -> list[dict[str, Any]]:
    """Cost rates (currency per second) per tenant, per tenant and pipeline, per tenant and model, per scope."""
    labels = list(settings.cost_metric_labels)
    levels: list[list[str]] = []
    for label in ("tenant", "pipeline", "model"):
        if label in labels:
            level: list[str] = ["tenant", label] if label != "tenant" and "tenant" in labels else [label]
            levels.append(level)
    levels.append(labels)
    rules = []
    seen: set[str] = set()
    for window in RATE_WINDOWS:
        for level in levels:
            name = f"{'_'.join(level) or 'all'}:costguard_cost:rate{window}"
            if name in seen:
                continue
            seen.add(name)
            by = ", ".join([*level, "currency"])
            rules.append({"record": name, "expr": f"sum by ({by}) ({_dedup(f'rate(costguard_cost_total[{window}])')})"})
    return rules


def self_monitoring_rules(settings: Settings) -> list[dict[str, Any]]:
    evaluation_limit = 3 * settings.evaluation_interval_seconds + 30  # the same limit as /readyz
    feed_limit = settings.usage_feed_stale_after_seconds + USAGE_BUCKET_SECONDS
    return [
        _alert(
            "CostGuardEvaluationStale",
            f"time() - {_dedup('costguard_last_evaluation_timestamp_seconds')} > {_seconds(evaluation_limit)}",
            settings=settings,
            severity="warning",
            for_=FOR_EVALUATION_STALE,
            summary="costguard has not finished an evaluation cycle for {{ $value | humanizeDuration }}",
            description=(
                "The last evaluation cycle of {{ $labels.job }} finished {{ $value | humanizeDuration }} ago "
                f"(limit {_seconds(evaluation_limit)}s). Budgets, metrics and alerts are frozen and firing "
                "alerts are no longer re-sent to Alertmanager."
            ),
        ),
        _alert(
            "CostGuardUsageFeedStale",
            f"time() - {_dedup('costguard_usage_last_record_timestamp_seconds')} > {_seconds(feed_limit)}",
            settings=settings,
            severity="warning",
            for_=FOR_FEED_STALE,
            summary="No new usage has reached costguard for {{ $value | humanizeDuration }}",
            description=(
                "The newest usage record folded into costguard is {{ $value | humanizeDuration }} old "
                f"(limit {_seconds(feed_limit)}s). Spend is under-counted and budget alerts stay silent."
            ),
        ),
        _alert(
            "CostGuardAlertDeliveryFailing",
            f"{_dedup('increase(costguard_alert_notification_failures_total[15m])')} > 0\n"
            f"or {_dedup('delta(costguard_alert_outbox_dead[1h])')} > 0",
            settings=settings,
            severity="warning",
            for_=FOR_DELIVERY_FAILING,
            summary="costguard cannot deliver alerts to {{ $labels.receiver }}",
            description=(
                "Deliveries to {{ $labels.receiver }} keep failing or notifications were dead-lettered. "
                "Budget alerts queue up in the outbox (costguard_alert_outbox_pending) and may never arrive."
            ),
        ),
        _alert(
            "CostGuardUsageRejections",
            "sum by (reason) (rate(costguard_usage_records_rejected_total[10m])) > 0",
            settings=settings,
            severity="warning",
            for_=FOR_REJECTIONS,
            summary="costguard is refusing usage records ({{ $labels.reason }})",
            description=(
                "POST /v1/usage has refused {{ $value | humanize }} records/s for reason {{ $labels.reason }} "
                f"for over {FOR_REJECTIONS}. Refused batches are not stored, so spend is under-counted."
            ),
        ),
    ]


def anomaly_rules(settings: Settings) -> list[dict[str, Any]]:
    labels = list(settings.cost_metric_labels)
    by = ", ".join([*labels, "currency"])
    # Computed inline rather than from the recording rule: a rule in another group is evaluated
    # independently, so reading it here could see the previous interval's value or none at all.
    recent = f"sum by ({by}) ({_dedup('rate(costguard_cost_total[1h])')}) * 3600"
    baseline = f"sum by ({by}) ({_dedup(f'rate(costguard_cost_total[{ANOMALY_BASELINE}])')}) * 3600"
    history = f"sum by ({by}) ({_dedup(f'costguard_cost_total offset {ANOMALY_BASELINE}')})"
    scope = " ".join(f"{label} {{{{ $labels.{label} }}}}" for label in labels) or "all usage"
    return [
        _alert(
            "CostSpendAnomaly",
            f"{recent} > {ANOMALY_FACTOR} * {baseline}\nand {recent} > {ANOMALY_MIN_PER_HOUR}\nand {history}",
            settings=settings,
            severity="warning",
            for_=FOR_ANOMALY,
            summary=f"Spend of {scope} is far above its {ANOMALY_BASELINE} baseline",
            description=(
                f"The last hour's spend rate of {scope} is {{{{ $value | humanize }}}} {{{{ $labels.currency }}}}/h, "
                f"more than {ANOMALY_FACTOR} x its {ANOMALY_BASELINE} average."
            ),
        )
    ]


def budget_alert_rules(settings: Settings) -> list[dict[str, Any]]:
    """costguard's budget alerts as Prometheus rules (same conditions, no hysteresis, no per-budget runbook)."""
    on = f"on ({', '.join(SCOPE)})"
    utilization = _dedup("costguard_budget_utilization_ratio")
    period_end = _dedup("costguard_budget_period_end_timestamp_seconds")
    period_start = _dedup("costguard_budget_period_start_timestamp_seconds")
    share = 1 / logic.BURN_EXHAUSTION_SHARE
    approaching_thresholds = _dedup('costguard_budget_threshold_ratio{threshold!="1"}')
    where = "{{ $labels.tenant }} (pipeline {{ $labels.pipeline }}, model {{ $labels.model }})"
    return [
        _alert(
            logic.APPROACHING,
            f"{utilization}\n  >= {on} group_right ()\n{approaching_thresholds}",
            settings=settings,
            severity=logic.SEVERITY[logic.APPROACHING],
            summary="{{ $labels.tenant }} has used {{ $value | humanizePercentage }} of budget {{ $labels.budget }}"
            " ({{ $labels.period }})",
            description=f"Spend of {where} passed the {{{{ $labels.threshold }}}} threshold of budget "
            "{{ $labels.budget }} in period {{ $labels.period }}.",
        ),
        _alert(
            logic.EXCEEDED,
            f"{utilization} >= 1",
            settings=settings,
            severity=logic.SEVERITY[logic.EXCEEDED],
            labels={"threshold": "1"},
            summary="{{ $labels.tenant }} has exceeded budget {{ $labels.budget }} ({{ $labels.period }})",
            description=f"Spend of {where} is {{{{ $value | humanizePercentage }}}} of budget "
            "{{ $labels.budget }} in period {{ $labels.period }}.",
        ),
        _alert(
            logic.FORECAST_EXCEEDED,
            f"{_dedup('costguard_budget_forecast_ratio')} >= 1\nand {_dedup('costguard_budget_forecast_enabled')} == 1",
            settings=settings,
            severity=logic.SEVERITY[logic.FORECAST_EXCEEDED],
            summary="{{ $labels.tenant }} is forecast to exceed budget {{ $labels.budget }} ({{ $labels.period }})",
            description=f"At the current pace {where} will spend {{{{ $value | humanizePercentage }}}} of budget "
            "{{ $labels.budget }} by the end of period {{ $labels.period }}.",
        ),
        _alert(
            logic.BURN_RATE_HIGH,
            # Both windows' pace would spend what is left before this share of the time left has passed:
            # burn > (1 - utilization) x period length / (share x time left).
            f"min without (window) ({_dedup('costguard_budget_burn_rate_ratio')})\n"
            f"  > {_seconds(share)} * (1 - {utilization})\n"
            f"    * ({period_end} - {period_start})\n"
            f"    / ({period_end} - time())\n"
            f"and {utilization} < 1\n"
            f"and {period_end} > time()",
            settings=settings,
            severity=logic.SEVERITY[logic.BURN_RATE_HIGH],
            summary="{{ $labels.tenant }} is burning budget {{ $labels.budget }} fast ({{ $labels.period }})",
            description=f"Over both the last 1h and 6h {where} spends {{{{ $value | humanize }}}} x the even pace "
            "of budget {{ $labels.budget }}: at this rate it is used up well before period {{ $labels.period }} ends.",
        ),
    ]


def rule_groups(settings: Settings, *, budget_alerts: bool = False) -> dict[str, Any]:
    if budget_alerts:
        return {"groups": [{"name": "costguard-budget-alerts", "rules": budget_alert_rules(settings)}]}
    return {
        "groups": [
            {"name": "costguard-cost-rates", "rules": recording_rules(settings)},
            {"name": "costguard-self-monitoring", "rules": self_monitoring_rules(settings)},
            {"name": "costguard-spend-anomaly", "rules": anomaly_rules(settings)},
        ]
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, so the file reads like hand-written PromQL."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = """\
# Prometheus rules for costguard, generated by `costguard rules{flag}` -- do not edit by hand.
# {what}
"""


def render(settings: Settings, *, budget_alerts: bool = False) -> str:
    what = (
        "Budget alerts evaluated by Prometheus: load this file INSTEAD of costguard's own delivery\n"
        "# (COSTGUARD_ALERTMANAGER_URLS empty), never next to it, or every budget alert arrives twice."
        if budget_alerts
        else "Cost rates per tenant, pipeline and model; costguard's self-monitoring; spend anomalies."
    )
    body = yaml.dump(
        rule_groups(settings, budget_alerts=budget_alerts),
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,
        allow_unicode=True,
    )
    return HEADER.format(flag=" --budget-alerts" if budget_alerts else "", what=what) + body
