"""``costguard review``: how many recent alerts held up."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from costguard.cli.common import fail, open_or_fail, out
from costguard.db import transaction, utcnow


def review(
    days: int = typer.Option(7, "--days", min=1, help="review alerts that started in this many days"),
    format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """How many recent alerts held up: false-positive rate per alert against the 2% target."""
    from costguard.review.logic import CONFIRMED, FALSE_POSITIVE, OPEN, TARGET_FALSE_POSITIVE_RATE
    from costguard.review.service import review_alerts

    if format not in ("table", "json"):
        fail(f"--format {format!r} is not supported; use table or json")
    rt = open_or_fail("costguard-review")
    with transaction(rt.factory) as session:
        result = review_alerts(session, settings=rt.settings, now=utcnow(), days=days)
    rows = {
        name: {"confirmed": c[CONFIRMED], "false_positive": c[FALSE_POSITIVE], "open": c[OPEN]}
        for name, c in sorted(result.by_alertname.items())
    }
    if format == "json":
        print(
            json.dumps(
                {
                    "days": days,
                    "alerts": rows,
                    "false_positive_rate": round(result.false_positive_rate, 6),
                    "target": TARGET_FALSE_POSITIVE_RATE,
                    "meets_target": result.meets_target,
                    "false_positives": [
                        {
                            "alertname": a.alertname,
                            "budget": a.budget,
                            "tenant": a.tenant,
                            "period": a.period,
                            "fingerprint": a.fingerprint,
                            "utilization_now": round(a.utilization_now, 6),
                        }
                        for a in result.false_positives
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table("alertname", "confirmed", "false positive", "open")
    for name, counts in rows.items():
        table.add_row(name, str(counts["confirmed"]), str(counts["false_positive"]), str(counts["open"]))
    out.print(table)
    for alert in result.false_positives:
        out.print(
            f"false positive: {alert.alertname} {alert.budget}/{alert.tenant} {alert.period} "
            f"(utilization now {alert.utilization_now:.1%})",
            markup=False,
        )
    verdict = "meets" if result.meets_target else "misses"
    print(
        f"false-positive rate {result.false_positive_rate:.2%} over {result.decided} decided alerts in {days} days; "
        f"{verdict} the {TARGET_FALSE_POSITIVE_RATE:.0%} target"
    )
