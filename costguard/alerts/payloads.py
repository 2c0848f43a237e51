"""What receivers get: alert labels and annotations, Alertmanager v2 alerts, webhook v4 messages. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from costguard.alerts.logic import FIRING, AlertKey
from costguard.money import money_display

SUMMARIES = {
    "CostBudgetApproaching": "{tenant} has used {pct} of budget {budget} ({period})",
    "CostBudgetExceeded": "{tenant} has exceeded budget {budget} ({period})",
    "CostBudgetForecastExceeded": "{tenant} is forecast to exceed budget {budget} ({period})",
    "CostBudgetBurnRateHigh": "{tenant} is burning budget {budget} fast ({period})",
}


@dataclass(frozen=True, slots=True)
class AlertContext:
    """Everything needed to describe one alert of one budget scope."""

    key: AlertKey
    severity: str
    budget_labels: dict[str, str]
    currency: str
    amount: str
    spend: str
    forecast_spend: str
    utilization: float
    forecast_utilization: float
    description: str | None
    runbook_url: str
    generator_url: str


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def alert_labels(ctx: AlertContext) -> dict[str, str]:
    key = ctx.key
    found = {
        **ctx.budget_labels,
        "alertname": key.alertname,
        "severity": ctx.severity,
        "budget": key.budget,
        "tenant": key.tenant,
        "pipeline": key.pipeline,
        "model": key.model,
        "period": key.period,
    }
    if key.threshold:
        found["threshold"] = key.threshold
    return found


def alert_annotations(ctx: AlertContext) -> dict[str, str]:
    key = ctx.key
    summary = SUMMARIES.get(key.alertname, "{budget}").format(
        tenant=key.tenant, budget=key.budget, period=key.period, pct=_pct(ctx.utilization)
    )
    scope = f"pipeline {key.pipeline}, model {key.model}"
    description = (
        f"Spend {money_display_text(ctx.spend)} {ctx.currency} of {money_display_text(ctx.amount)} {ctx.currency} "
        f"({_pct(ctx.utilization)}) for tenant {key.tenant} ({scope}) in period {key.period}; "
        f"forecast at period end {money_display_text(ctx.forecast_spend)} {ctx.currency} "
        f"({_pct(ctx.forecast_utilization)})."
    )
    if ctx.description:
        description += f" Budget: {ctx.description}"
    return {"summary": summary, "description": description, "runbook_url": ctx.runbook_url}


def money_display_text(value: str) -> str:
    return money_display(Decimal(value))


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def alertmanager_alert(
    *, labels: dict[str, str], annotations: dict[str, str], generator_url: str, starts_at: datetime, ends_at: datetime
) -> dict[str, Any]:
    """One element of the body of Alertmanager's ``POST /api/v2/alerts``."""
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at),
        "generatorURL": generator_url,
    }


def webhook_message(
    *,
    alerts: list[dict[str, Any]],
    external_url: str,
    receiver: str = "costguard",
) -> dict[str, Any]:
    """An Alertmanager webhook (version "4") message carrying ``alerts`` (each with status and fingerprint)."""
    common_labels = _common([a["labels"] for a in alerts])
    common_annotations = _common([a["annotations"] for a in alerts])
    group_labels = {k: v for k, v in common_labels.items() if k in ("alertname", "budget", "tenant")}
    status = FIRING if any(a["status"] == FIRING for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "alerts": alerts,
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}
