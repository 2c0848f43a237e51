"""Ingest files as streams: validate each row as it is read and store the file in one transaction.

Nothing is held per record: rows flow from the reader through validation straight into the
store (COPY on PostgreSQL), so memory stays flat whatever the file size. By default a file is
all or nothing: after the first invalid row nothing more is staged, the remaining rows are still
checked so the error lists them, and the transaction is rolled back. With ``skip_invalid`` the
good rows are stored and each rejected row goes, with its reason, to a rejects file (JSON Lines).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import sqlalchemy.exc
from sqlalchemy.orm import Session, sessionmaker

from costguard.db import transaction
from costguard.errors import CostguardError, InvalidInput
from costguard.usage import importers
from costguard.usage.focus import FocusOptions, read_focus
from costguard.usage.importers import RowProblem
from costguard.usage.schemas import RecordError, UsageIn, parse_usage
from costguard.usage.service import ingest_batch

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20
PROGRESS_EVERY = 10_000

Progress = Callable[[int], None]


@dataclass(slots=True)
class FileResult:
    path: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_path: str | None = None


@dataclass(slots=True)
class _Tally:
    read: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


class FileRefused(InvalidInput):
    """A file refused whole: nothing from it was stored; ``rejected`` counts its invalid rows."""

    def __init__(self, message: str, *, details: Any = None, rejected: int = 0, status: int = 422) -> None:
        super().__init__(message, details=details)
        self.rejected = rejected
        self.status_code = status


def default_rejects_path(path: str) -> str:
    """Next to the input: ``usage.jsonl`` → ``usage.jsonl.rejects.jsonl``; stdin → ``stdin.rejects.jsonl``."""
    return "stdin.rejects.jsonl" if path == "-" else f"{path}.rejects.jsonl"


def raw_rows(
    path: str, fmt: str, focus: FocusOptions | None = None, *, currency: str | None = None
) -> Iterator[tuple[int, Any]]:
    """(line, raw record) of a file; JSON Lines validated on the way when ``currency`` is given."""
    with importers.open_text(path) as stream:
        first = stream.readline()
        chosen = importers.detect_format(path, first) if fmt == "auto" else fmt
        lines = itertools.chain([first], stream)
        if chosen == "focus":
            yield from read_focus(lines, path, focus)
        elif chosen == "csv":
            yield from importers.read_csv(lines, path)
        else:
            yield from importers.read_jsonl(lines, path, currency=currency)


class _Rejects:
    """The rejects file, opened on the first rejected row only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: IO[str] | None = None

    def write(self, source: str, line: int, where: str, reason: str, raw: Any) -> None:
        if self._stream is None:
            self._stream = Path(self.path).open("a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        entry: dict[str, Any] = {"file": source, "line": line, "field": where, "reason": reason}
        if isinstance(raw, RowProblem):
            entry["text"] = raw.text
        else:
            entry["record"] = raw
        self._stream.write(json.dumps(entry, default=str, ensure_ascii=False) + "\n")

    @property
    def used(self) -> bool:
        return self._stream is not None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class _Discard(_Rejects):
    """Rejected rows already written (or counted) by the first read: a re-read only skips them."""

    def write(self, source: str, line: int, where: str, reason: str, raw: Any) -> None:
        return None


def _reread(path: str, fmt: str, *, currency: str, focus: FocusOptions | None, first: _Tally) -> Iterator[UsageIn]:
    """The file's valid records once more, for the staging path when the optimistic COPY met a taken key."""
    if first.errors:  # the file is refused whatever is stored
        return
    again = _Tally()
    yield from _valid_records(
        path, fmt, currency=currency, focus=focus, tally=again, rejects=_Discard(path), progress=None
    )
    if (again.read, again.rejected) != (first.read, first.rejected):
        raise FileRefused(f"{path} changed while it was being ingested; nothing from it was stored, run it again")


def _valid_records(
    path: str,
    fmt: str,
    *,
    currency: str,
    focus: FocusOptions | None,
    tally: _Tally,
    rejects: _Rejects | None,
    progress: Progress | None,
) -> Iterator[UsageIn]:
    for line, raw in raw_rows(path, fmt, focus, currency=currency):
        tally.read += 1
        if progress is not None and tally.read % PROGRESS_EVERY == 0:
            progress(tally.read)
        if type(raw) is UsageIn:  # already validated by the fast reader
            if not tally.errors:
                yield raw
            continue
        if isinstance(raw, RowProblem):
            where, reason = raw.where, raw.message
        else:
            try:
                record = parse_usage(raw, currency=currency)
            except RecordError as exc:
                where, reason = exc.field, exc.message
            else:
                if not tally.errors:
                    yield record
                continue
        tally.rejected += 1
        if rejects is not None:
            rejects.write(path, line, where, reason, raw)
        elif len(tally.errors) < MAX_ERRORS_SHOWN:
            tally.errors.append(f"{path}:{line}: {where}: {reason}")
    if progress is not None:
        progress(tally.read)


def ingest_file(
    factory: sessionmaker[Session],
    path: str,
    fmt: str,
    *,
    currency: str,
    now: datetime,
    focus: FocusOptions | None = None,
    skip_invalid: bool = False,
    rejects_path: str | None = None,
    progress: Progress | None = None,
) -> FileResult:
    """Store one file in one transaction; raise ``FileRefused`` (nothing stored) naming file and line."""
    rejects = _Rejects(rejects_path or default_rejects_path(path)) if skip_invalid else None
    tally = _Tally()
    records = _valid_records(path, fmt, currency=currency, focus=focus, tally=tally, rejects=rejects, progress=progress)
    # stdin cannot be read twice, so it goes straight to the staging path.
    replay = None if path == "-" else lambda: _reread(path, fmt, currency=currency, focus=focus, first=tally)
    try:
        with transaction(factory) as session:
            outcome = ingest_batch(session, records, now=now, replay=replay)
            if tally.errors:
                more = tally.rejected - 1
                raise FileRefused(
                    f"{tally.errors[0]}"
                    + (f" (and {more} more invalid rows)" if more else "")
                    + f"; nothing from {path} was stored (pass --skip-invalid to store the valid rows)",
                    details=tally.errors,
                    rejected=tally.rejected,
                )
    except importers.FileFormatError as exc:
        raise FileRefused(f"{exc}; nothing from {path} was stored", details=[str(exc)]) from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise FileRefused(f"{path} cannot be read ({exc}); nothing from it was stored", details=[str(exc)]) from None
    except FileRefused:
        raise
    except (sqlalchemy.exc.OperationalError, psycopg.OperationalError) as exc:
        # The transaction died with the connection (server restart, pg_terminate_backend): nothing stored.
        cause = getattr(exc, "orig", None) or exc
        raise FileRefused(
            f"{path}: the database connection was lost while ingesting ({cause}); nothing from it was stored, "
            "run the same command again",
            status=503,
        ) from None
    except CostguardError as exc:
        raise FileRefused(
            f"{path}: {exc.message}", details=exc.details, rejected=len(exc.details or []), status=exc.status_code
        ) from None
    finally:
        if rejects is not None:
            rejects.close()
    log.info(
        "usage.file_ingested",
        extra={
            "path": path,
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": tally.rejected,
        },
    )
    return FileResult(
        path,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=tally.rejected,
        rejects_path=rejects.path if rejects is not None and rejects.used else None,
    )
