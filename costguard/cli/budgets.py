"""``costguard budgets validate|plan|apply|list``: budgets-as-code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from costguard.cli.common import err, fail, load_settings, open_or_fail, out
from costguard.config import Settings
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError

if TYPE_CHECKING:  # the budgets machinery is imported by the commands that use it: ingest starts faster
    from costguard.budgets.files import FileBudget

budgets_app = typer.Typer(help="Budgets-as-code and budget listing.", no_args_is_help=True)


@budgets_app.command("validate")
def budgets_validate(directory: Path = typer.Argument(None, help="folder of budget YAML files")) -> None:
    """Check every budget file; print file:line messages and exit non-zero on any problem."""
    from costguard.budgets.files import load_dir

    settings = load_settings()
    loaded = load_dir(directory or Path(settings.budgets_dir), currency=settings.currency)
    for problem in loaded.errors:
        err.print(problem, markup=False, highlight=False)
    if loaded.errors:
        raise typer.Exit(1)
    out.print(f"{len(loaded.budgets)} budgets are valid")


def _load_or_fail(directory: Path | None, settings: Settings) -> list[FileBudget]:
    from costguard.budgets.files import load_dir

    loaded = load_dir(directory or Path(settings.budgets_dir), currency=settings.currency)
    if loaded.errors:
        for problem in loaded.errors:
            err.print(problem, markup=False, highlight=False)
        fail(f"{len(loaded.errors)} problems in budget files; nothing was changed")
    return loaded.budgets


@budgets_app.command("plan")
def budgets_plan(directory: Path = typer.Argument(None, help="folder of budget YAML files")) -> None:
    """Show what apply would change: creates, updates (with changed fields) and deletes."""
    from costguard.budgets.files import plan

    rt = open_or_fail("costguard-budgets")
    loaded = _load_or_fail(directory, rt.settings)
    with transaction(rt.factory) as session:
        changes = plan(session, loaded)
    for change in changes:
        print(change.describe())
    counts = {action: sum(c.action == action for c in changes) for action in ("create", "update", "delete")}
    print(f"plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete")


@budgets_app.command("apply")
def budgets_apply(directory: Path = typer.Argument(None, help="folder of budget YAML files")) -> None:
    """Make the database match the folder, atomically: all changes or none."""
    from costguard.budgets.files import apply
    from costguard.budgets.service import Actor

    rt = open_or_fail("costguard-budgets")
    loaded = _load_or_fail(directory, rt.settings)
    try:
        with transaction(rt.factory) as session:
            changes = apply(session, loaded, actor=Actor("budgets-as-code", "file"), now=utcnow())
    except CostguardError as exc:
        fail(f"{exc.message}; nothing was changed")
    for change in changes:
        print(change.describe())
    print(f"applied: {len(changes)} changes")


@budgets_app.command("list")
def budgets_list() -> None:
    """List budgets."""
    from costguard.budgets.service import list_budgets

    rt = open_or_fail("costguard-budgets")
    with transaction(rt.factory) as session:
        budgets = list_budgets(session)
    table = Table("id", "tenant", "pipeline", "model", "period", "amount", "thresholds", "managed by")
    for b in budgets:
        s = b.spec
        table.add_row(
            s.id,
            s.tenant,
            s.pipeline,
            s.model,
            s.period,
            f"{b.document()['amount']} {s.currency}",
            ", ".join(str(t) for t in s.thresholds),
            b.managed_by_file or "api",
        )
    out.print(table)
