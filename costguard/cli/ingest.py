"""``costguard ingest``: usage files exactly once, with a progress bar on a terminal."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from costguard.cli.common import err, fail, open_or_fail
from costguard.db import utcnow


def ingest(
    paths: list[str] = typer.Argument(..., help="files (.jsonl, .csv, FOCUS .csv, optionally gzip) or - for stdin"),
    format: str = typer.Option("auto", "--format", help="auto, jsonl, csv or focus"),
    tenant: str | None = typer.Option(None, "--tenant", help="FOCUS: tenant for files without account columns"),
    tenant_column: str | None = typer.Option(None, "--tenant-column", help="FOCUS: the column holding the tenant"),
    cost_column: str = typer.Option("EffectiveCost", "--cost-column", help="FOCUS: EffectiveCost or BilledCost"),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="store the valid rows and write the invalid ones, with reasons, to --rejects"
    ),
    rejects: str | None = typer.Option(
        None, "--rejects", help="with --skip-invalid: where rejected rows go (default: INPUT.rejects.jsonl)"
    ),
) -> None:
    """Ingest usage files exactly once (each file all or nothing unless --skip-invalid)."""
    from costguard.usage.files import FileRefused, ingest_file
    from costguard.usage.focus import FocusOptions
    from costguard.usage.importers import FORMATS

    if format not in FORMATS:
        fail(f"--format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    if rejects is not None and not skip_invalid:
        fail("--rejects needs --skip-invalid; without it an invalid row refuses the whole file")
    rt = open_or_fail("costguard-ingest")
    # Everything long-lived exists now (modules, settings, the engine). Frozen, it is left out of
    # the collections that a million short-lived records trigger, instead of being walked by each
    # of them: about a tenth of a large file's time.
    gc.freeze()
    focus = FocusOptions(tenant_column=tenant_column, tenant=tenant, cost_column=cost_column)
    accepted = duplicates = rejected = 0
    started = time.perf_counter()
    failed = False
    with _ingest_progress() as progress:
        for path in paths:
            task = progress.add_task(path, total=None) if progress else None

            def advance(count: int, task: object = task) -> None:
                if progress is not None:
                    progress.update(task, completed=count)  # type: ignore[arg-type]

            try:
                result = ingest_file(
                    rt.factory,
                    path,
                    format,
                    currency=rt.settings.currency,
                    now=utcnow(),
                    focus=focus,
                    skip_invalid=skip_invalid,
                    rejects_path=rejects,
                    progress=advance,
                )
            except FileRefused as exc:
                failed = True
                for line in (exc.details if isinstance(exc.details, list) else [])[:20]:
                    if isinstance(line, str) and line not in exc.message:
                        err.print(line, markup=False, highlight=False, soft_wrap=True)
                err.print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
                rejected += exc.rejected
                continue
            accepted += result.accepted
            duplicates += result.duplicates
            rejected += result.rejected
            if result.rejects_path:
                err.print(
                    f"{path}: {result.rejected} rejected rows written to {result.rejects_path}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
    rate = (accepted + duplicates + rejected) / max(time.perf_counter() - started, 1e-9)
    print(f"accepted {accepted}, duplicates {duplicates}, rejected {rejected} ({rate:,.0f} records/s)")
    if failed:
        raise typer.Exit(1)


@contextlib.contextmanager
def _ingest_progress() -> Iterator[Progress | None]:
    """A rich progress display on a terminal only; pipes and logs get the summary line alone."""
    if not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("records"))
    with Progress(*columns, console=err, transient=True) as progress:
        yield progress
