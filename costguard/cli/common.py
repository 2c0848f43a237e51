"""What every command shares: consoles, one-sentence failures, settings, the runtime, --at parsing."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NoReturn

import typer
from rich.console import Console

from costguard.config import Settings, get_settings
from costguard.runtime import Runtime, open_runtime

out = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def load_settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:
        fail(f"invalid settings: {exc}")


def open_or_fail(name: str, *, check_schema: bool = True) -> Runtime:
    from costguard.schema import SchemaOutdatedError

    try:
        return open_runtime(load_settings(), application_name=name, check_schema=check_schema)
    except SchemaOutdatedError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open the database {load_settings().database_url}: {exc}")


def parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at {value!r} is not RFC 3339; write e.g. 2026-12-04T10:00:00Z")
    if parsed.tzinfo is None:
        fail(f"--at {value!r} has no UTC offset; add Z or +HH:MM")
    return parsed


def setup_logging() -> None:
    from costguard.logs import configure

    configure(logging.INFO)
