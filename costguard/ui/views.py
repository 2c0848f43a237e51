"""Pure helpers between HTML forms, the services' documents and the templates.

Form fields are turned into the same budget document the API takes, so parse_spec (and only it)
decides what is valid; its "field: message" sentences are shown next to the field they name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from costguard.budgets.schemas import ALL

FORM_FIELDS = (
    "id",
    "tenant",
    "pipeline",
    "model",
    "period",
    "timezone",
    "amount",
    "currency",
    "thresholds",
    "forecast",
    "labels",
    "runbook_url",
    "description",
)
GENERAL = "budget"


@dataclass(slots=True)
class FormErrors:
    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, sentence: str) -> None:
        name, _, message = sentence.partition(": ")
        key = name.split(".", 1)[0] if message else GENERAL
        key = key if key in FORM_FIELDS else GENERAL
        self.by_field.setdefault(key, []).append(message or sentence)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def form_values(document: Mapping[str, Any]) -> dict[str, str]:
    """A budget document as the text a form shows."""
    labels = document.get("labels") or {}
    return {
        "id": str(document.get("id") or ""),
        "tenant": str(document.get("tenant") or ""),
        "pipeline": str(document.get("pipeline") or ALL),
        "model": str(document.get("model") or ALL),
        "period": str(document.get("period") or "monthly"),
        "timezone": str(document.get("timezone") or ""),
        "amount": str(document.get("amount") or ""),
        "currency": str(document.get("currency") or ""),
        "thresholds": ", ".join(str(t) for t in document.get("thresholds") or []),
        "forecast": "on" if document.get("forecast") else "",
        "labels": "\n".join(f"{k}={v}" for k, v in labels.items()),
        "runbook_url": str(document.get("runbook_url") or ""),
        "description": str(document.get("description") or ""),
    }


def submitted_values(form: Mapping[str, str]) -> dict[str, str]:
    """What the user typed, shown again as typed when the form comes back with errors."""
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    values["forecast"] = "on" if form.get("forecast") else ""
    return values


def _optional(value: str) -> str | None:
    return value.strip() or None


def form_document(form: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The form as a budget document, plus sentences for text that cannot even be read as a document."""
    problems: list[str] = []
    labels: dict[str, str] = {}
    for number, line in enumerate(form.get("labels", "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            problems.append(f"labels: line {number} has no '='; write one name=value per line")
            continue
        labels[name.strip()] = value.strip()
    thresholds = [part for part in re.split(r"[,\s]+", form.get("thresholds", "").strip()) if part]
    document: dict[str, Any] = {
        "id": form.get("id", "").strip(),
        "tenant": form.get("tenant", "").strip(),
        "pipeline": form.get("pipeline", "").strip() or ALL,
        "model": form.get("model", "").strip() or ALL,
        "period": form.get("period", "").strip(),
        "timezone": _optional(form.get("timezone", "")),
        "amount": form.get("amount", "").strip(),
        "currency": form.get("currency", "").strip(),
        "thresholds": thresholds,
        "forecast": form.get("forecast") in ("on", "true", "1"),
        "labels": labels,
        "runbook_url": _optional(form.get("runbook_url", "")),
        "description": _optional(form.get("description", "")),
    }
    return document, problems


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field an audit entry changed; creates and deletes list all fields."""
    keys = [k for k in FORM_FIELDS if k in (before or {}) or k in (after or {})]
    rows = []
    for key in keys:
        old = shown((before or {}).get(key)) if before else ""
        new = shown((after or {}).get(key)) if after else ""
        if old != new:
            rows.append((key, old, new))
    return rows


def shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
    return str(value)


def money(value: Decimal | str | None) -> str:
    """Rounded to cents with separators, for reading; pages carry the exact value in a title."""
    if value is None:
        return "—"
    try:
        return f"{Decimal(value):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.0%}"


def time_left(end: datetime | str | None, now: datetime) -> str:
    if end is None:
        return "—"
    if isinstance(end, str):
        end = datetime.fromisoformat(end)
    left = end - now
    if left <= timedelta(0):
        return "ended"
    days, hours = left.days, left.seconds // 3600
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {(left.seconds % 3600) // 60} min"


def safe_next(target: str | None) -> str:
    """Only same-site paths after sign-in: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
