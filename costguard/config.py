"""All settings, read once from the environment (prefix ``COSTGUARD_``) and passed down explicitly."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite:///./costguard.db"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COSTGUARD_", extra="ignore")

    database_url: str = EMBEDDED_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    evaluation_interval_seconds: float = Field(default=60, gt=0)
    timezone: str = "UTC"
    currency: str = "USD"
    alertmanager_urls: CsvList = Field(default_factory=list)
    webhook_urls: CsvList = Field(default_factory=list)
    webhook_secret: str = ""
    external_url: str = "http://127.0.0.1:8000"
    runbook_base_url: str = ""
    budgets_dir: str = "budgets"
    # serve: how many uvicorn worker processes answer requests, and whether serve also runs the
    # evaluation cycle (the database guard keeps it to one runner however many there are).
    web_workers: int = Field(default=1, ge=1, le=64)
    serve_scheduler: bool = True
    # Alert delivery: how often firing alerts are re-sent to Alertmanager, and when a
    # notification nobody accepted is given up (dead-lettered).
    alert_resend_interval_seconds: float = Field(default=60, gt=0)
    alert_dead_letter_after_seconds: float = Field(default=86400, gt=0)
    notification_timeout_seconds: float = Field(default=10, gt=0)
    # Retry of a refused notification: exponential from the first step up to the cap, with jitter.
    alert_retry_initial_seconds: float = Field(default=5, gt=0)
    alert_retry_max_seconds: float = Field(default=600, gt=0)
    # Prometheus rules (`costguard rules`): how old the newest usage may be before the feed counts as stale.
    usage_feed_stale_after_seconds: float = Field(default=3600, gt=0)
    # Ingestion limits: a batch over either is refused with 413.
    max_batch_records: int = Field(default=10_000, ge=1)
    max_batch_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    cost_metric_labels: CsvList = Field(default_factory=lambda: ["tenant", "pipeline", "model"])

    @field_validator("alertmanager_urls", "webhook_urls", "cost_metric_labels", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}; use a name such as Europe/Berlin") from exc
        return value

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha() or not value.isupper():
            raise ValueError("currency must be a three-letter ISO 4217 code such as USD")
        return value

    @field_validator("cost_metric_labels")
    @classmethod
    def _known_cost_labels(cls, value: list[str]) -> list[str]:
        allowed = {"tenant", "pipeline", "model"}
        unknown = [label for label in value if label not in allowed]
        if unknown:
            raise ValueError(f"cost_metric_labels accepts only tenant, pipeline, model; got {unknown}")
        return value

    @model_validator(mode="after")
    def _derive_runbook_base(self) -> Settings:
        self.external_url = self.external_url.rstrip("/")
        if not self.runbook_base_url:
            self.runbook_base_url = f"{self.external_url}/runbooks"
        self.runbook_base_url = self.runbook_base_url.rstrip("/")
        return self

    @property
    def is_embedded_sqlite(self) -> bool:
        return self.database_url == EMBEDDED_DATABASE_URL

    @property
    def default_zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def runbook_url(self, alertname: str) -> str:
        return f"{self.runbook_base_url}/{alertname}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead of calling this."""
    return Settings()
