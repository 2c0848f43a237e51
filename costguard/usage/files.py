"""Ingest files: validate every line, then store the file in one transaction (all or nothing)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from costguard.db import transaction
from costguard.errors import InvalidInput
from costguard.usage import importers
from costguard.usage.focus import FocusOptions, read_focus
from costguard.usage.schemas import RecordError, UsageIn, parse_usage
from costguard.usage.service import ingest_batch

CHUNK = 5000
MAX_ERRORS_SHOWN = 20


@dataclass(slots=True)
class FileResult:
    path: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


def raw_rows(path: str, fmt: str, focus: FocusOptions | None = None) -> Iterator[tuple[int, Any]]:
    with importers.open_text(path) as stream:
        first = stream.readline()
        chosen = importers.detect_format(path, first) if fmt == "auto" else fmt
        if chosen == "focus":
            reader: Iterator[tuple[int, Any]] = read_focus(itertools.chain([first], stream), path, focus)
        elif chosen == "csv":
            reader = importers.read_csv(itertools.chain([first], stream), path)
        else:
            reader = importers.read_jsonl(itertools.chain([first], stream), path)
        yield from reader


def validate_file(
    path: str, fmt: str, *, currency: str, focus: FocusOptions | None = None
) -> tuple[list[UsageIn], list[str]]:
    records: list[UsageIn] = []
    errors: list[str] = []
    try:
        for line, raw in raw_rows(path, fmt, focus):
            try:
                records.append(parse_usage(raw, currency=currency))
            except RecordError as exc:
                errors.append(f"{path}:{line}: {exc.field}: {exc.message}")
    except importers.FileFormatError as exc:
        errors.append(str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: cannot be read ({exc})")
    return records, errors


def ingest_file(
    factory: sessionmaker[Session],
    path: str,
    fmt: str,
    *,
    currency: str,
    now: datetime,
    focus: FocusOptions | None = None,
) -> FileResult:
    """All or nothing: any invalid line refuses the whole file, naming file and line."""
    records, errors = validate_file(path, fmt, currency=currency, focus=focus)
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise InvalidInput(f"{shown[0]}{more}; nothing from {path} was stored", details=errors)
    result = FileResult(path)
    with transaction(factory) as session:
        for start in range(0, len(records), CHUNK):
            outcome = ingest_batch(session, records[start : start + CHUNK], now=now)
            result.accepted += outcome.accepted
            result.duplicates += outcome.duplicates
    return result
