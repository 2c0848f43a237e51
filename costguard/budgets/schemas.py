"""The budget document: one schema for YAML files, the API and the console."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from costguard.money import MoneyError, money_text, parse_money

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels costguard sets itself on metrics and alerts: a budget may not override them.
RESERVED_LABELS = frozenset(
    {
        "alertname",
        "severity",
        "budget",
        "tenant",
        "pipeline",
        "model",
        "period",
        "currency",
        "threshold",
        "state",
        "job",
        "instance",
        "receiver",
        "le",
        "quantile",
    }
)
ALL = "*"
PeriodKind = Literal["daily", "weekly", "monthly", "quarterly", "yearly"]


class BudgetSpec(BaseModel):
    """A budget as finance writes it. Validation messages name the field and say what to write instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    tenant: str = Field(min_length=1, max_length=128)
    pipeline: str = Field(default=ALL, min_length=1, max_length=128)
    model: str = Field(default=ALL, min_length=1, max_length=128)
    period: PeriodKind = "monthly"
    timezone: str | None = None
    amount: Decimal
    currency: str = "USD"
    thresholds: tuple[float, ...] = (0.8,)
    forecast: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    runbook_url: str | None = None
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("must be a slug of lowercase letters, digits, - and _ (at most 64), e.g. acme-monthly")
        return value

    @field_validator("pipeline", "model", mode="before")
    @classmethod
    def _absent_is_all(cls, value: Any) -> Any:
        return ALL if value is None else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone; use a name such as Europe/Berlin") from None
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Decimal:
        if isinstance(value, float):
            # YAML and JSON numbers reach us as floats only from callers that did not keep them
            # exact; their shortest repr is the number the user wrote.
            value = repr(value)
        try:
            amount = parse_money(value)
        except MoneyError as exc:
            raise ValueError(f'{exc}; write it as a string such as "5000.00"') from None
        if amount <= 0:
            raise ValueError("must be greater than zero")
        return amount

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha() or not value.isupper():
            raise ValueError("must be a three-letter ISO 4217 code such as USD")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for threshold in value:
            if not 0 < threshold < 1:
                raise ValueError(f"{threshold} is not between 0 and 1 (exclusive); exceeded (1.0) is always on")
        if len(set(value)) != len(value):
            raise ValueError("lists a threshold twice")
        return tuple(sorted(value))

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)")
            if name in RESERVED_LABELS:
                raise ValueError(f"{name!r} is set by costguard itself; choose another label name")
        return value

    @field_validator("runbook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def is_template(self) -> bool:
        return self.tenant == ALL

    def document(self) -> dict[str, Any]:
        """The budget as JSON: money as an exact string, defaults spelled out."""
        data = self.model_dump(mode="python")
        data["amount"] = money_text(self.amount)
        data["thresholds"] = list(self.thresholds)
        return data


def validation_messages(errors: list[Any]) -> list[str]:
    """Pydantic errors as one sentence each: "amount: must be greater than zero"."""
    messages = []
    for error in errors:
        location = ".".join(str(part) for part in error["loc"]) or "budget"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a budget field; remove it (see the budget schema in the README)"
        elif error["type"] == "missing":
            message = "is required"
        messages.append(f"{location}: {message}")
    return messages
