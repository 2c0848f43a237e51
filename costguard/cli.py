"""The ``costguard`` command. Thin: parses arguments, opens the runtime, calls services, prints."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from costguard.budgets.files import FileBudget
from costguard.config import Settings, get_settings
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError
from costguard.runtime import Runtime, open_runtime

app = typer.Typer(help="costguard: per-tenant cost budgets with Prometheus metrics and alerts.", no_args_is_help=True)
budgets_app = typer.Typer(help="Budgets-as-code and budget listing.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens and roles.", no_args_is_help=True)
app.add_typer(budgets_app, name="budgets")
app.add_typer(tokens_app, name="tokens")
out = Console()
err = Console(stderr=True)
CLI_ACTOR = "cli"


def fail(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:
        fail(f"invalid settings: {exc}")


def _runtime(name: str, *, check_schema: bool = True) -> Runtime:
    from costguard.schema import SchemaOutdatedError

    try:
        return open_runtime(_settings(), application_name=name, check_schema=check_schema)
    except SchemaOutdatedError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open the database {_settings().database_url}: {exc}")


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at {value!r} is not RFC 3339; write e.g. 2026-12-04T10:00:00Z")
    if parsed.tzinfo is None:
        fail(f"--at {value!r} has no UTC offset; add Z or +HH:MM")
    return parsed


def _logging() -> None:
    from costguard.logs import configure

    configure(logging.INFO)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from costguard.schema import upgrade_to_head

    settings = _settings()
    try:
        upgrade_to_head(settings.database_url)
    except Exception as exc:
        fail(f"migration failed: {exc}")
    out.print("database schema is up to date")


def _first_admin_token(rt: Runtime) -> None:
    from costguard.auth.service import create_token, has_tokens

    with transaction(rt.factory) as session:
        if has_tokens(session):
            return
        issued = create_token(session, role="admin", name="bootstrap-admin", tenant=None, now=utcnow())
    print("costguard: created the first admin token (shown once; keep it safe):", flush=True)
    print(issued.secret, flush=True)


@app.command()
def serve(
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="do not run the evaluation cycle here"),
) -> None:
    """Serve the API, metrics and console; runs the evaluation cycle in-process unless --no-scheduler."""
    import uvicorn

    from costguard.api.app import create_app

    _logging()
    rt = _runtime("costguard-serve")
    _first_admin_token(rt)
    settings = rt.settings
    if no_scheduler:
        settings = settings.model_copy(update={"serve_scheduler": False})
        os.environ["COSTGUARD_SERVE_SCHEDULER"] = "false"  # seen by worker processes too
    if settings.web_workers > 1:
        # Several processes need an import string; each builds its app from the same environment.
        uvicorn.run(
            "costguard.api.app:create_app_from_environment",
            factory=True,
            workers=settings.web_workers,
            host=settings.host,
            port=settings.port,
            log_level="info",
        )
        return
    application = create_app(settings, rt.factory, run_scheduler=settings.serve_scheduler)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="info")


@app.command()
def worker() -> None:
    """Run the evaluation cycle on a schedule (standalone; several replicas are safe)."""
    from costguard.worker import blocking

    _logging()
    rt = _runtime("costguard-worker")
    scheduler = blocking(rt.factory, rt.settings)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


@app.command()
def evaluate(
    at: str | None = typer.Option(None, "--at", help="evaluate as if the clock read this RFC 3339 instant"),
) -> None:
    """Run one full cycle: aggregate, evaluate, queue and send alerts."""
    from costguard.evaluation.jobs import run_evaluation_cycle

    rt = _runtime("costguard-evaluate")
    outcome = run_evaluation_cycle(rt.factory, rt.settings, at=_instant(at))
    report = outcome.evaluation
    if report is None:
        out.print("another costguard is evaluating right now; nothing done")
        return
    delivered = outcome.delivery.delivered if outcome.delivery else 0
    out.print(
        f"evaluated {report.budgets_evaluated} budgets ({report.scopes_evaluated} scopes) at {report.at.isoformat()}: "
        f"{report.fired} fired, {report.resolved} resolved, {delivered} notifications delivered, "
        f"{len(report.failures)} failed"
    )
    for budget_id, problem in sorted(report.failures.items()):
        err.print(f"budget {budget_id} failed: {problem}", markup=False)
    if report.failures:
        raise typer.Exit(1)


@app.command()
def status(
    at: str | None = typer.Option(None, "--at", help="evaluate as of this instant first"),
    format: str = typer.Option("table", "--format", help="table or json"),
    tenant: str | None = typer.Option(None, "--tenant"),
) -> None:
    """Show every budget scope in its current period."""
    from costguard.evaluation.jobs import run_evaluation_cycle
    from costguard.evaluation.status import list_status

    if format not in ("table", "json"):
        fail(f"--format {format!r} is not supported; use table or json")
    rt = _runtime("costguard-status")
    if at is not None:
        run_evaluation_cycle(rt.factory, rt.settings, at=_instant(at))
    with transaction(rt.factory) as session:
        documents = list_status(session, tenant=tenant)
    if format == "json":
        print(json.dumps(documents, indent=2))
        return
    table = Table("budget", "tenant", "pipeline", "model", "period", "spend", "amount", "util", "forecast", "state")
    colors = {"ok": "green", "approaching": "yellow", "exceeded": "red"}
    for d in documents:
        table.add_row(
            d["budget"],
            d["tenant"],
            d["pipeline"],
            d["model"],
            d["period"],
            d["spend"],
            d["amount"],
            f"{d['utilization']:.1%}",
            f"{d['forecast_utilization']:.1%}",
            f"[{colors[d['state']]}]{d['state']}[/]",
        )
    out.print(table)


@app.command()
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
    rt = _runtime("costguard-ingest")
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


@budgets_app.command("validate")
def budgets_validate(directory: Path = typer.Argument(None, help="folder of budget YAML files")) -> None:
    """Check every budget file; print file:line messages and exit non-zero on any problem."""
    from costguard.budgets.files import load_dir

    settings = _settings()
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

    rt = _runtime("costguard-budgets")
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

    rt = _runtime("costguard-budgets")
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

    rt = _runtime("costguard-budgets")
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


@tokens_app.command("create")
def tokens_create(
    role: str = typer.Option(..., "--role", help="admin, finance, viewer or ingest"),
    tenant: str | None = typer.Option(None, "--tenant", help="bind the token to one tenant"),
    name: str | None = typer.Option(None, "--name", help="a name shown in the audit trail"),
) -> None:
    """Create a token; its secret is printed once, on the last line."""
    from costguard.auth.service import create_token

    rt = _runtime("costguard-tokens")
    try:
        with transaction(rt.factory) as session:
            issued = create_token(session, role=role, name=name, tenant=tenant, now=utcnow())
    except CostguardError as exc:
        fail(exc.message)
    print(
        f"created token {issued.id} ({issued.name}, role {issued.role}"
        + (f", tenant {issued.tenant}" if issued.tenant else "")
        + "); the secret is shown once:"
    )
    print(issued.secret)


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from costguard.auth.service import list_tokens

    rt = _runtime("costguard-tokens")
    with transaction(rt.factory) as session:
        rows = list_tokens(session)
    table = Table("id", "name", "role", "tenant", "created", "revoked")
    for t in rows:
        table.add_row(
            t.id,
            t.name,
            t.role,
            t.tenant or "",
            t.created_at.isoformat(timespec="seconds"),
            t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="the token id from tokens list")) -> None:
    """Revoke a token: it stops working at once."""
    from costguard.auth.service import revoke_token

    rt = _runtime("costguard-tokens")
    try:
        with transaction(rt.factory) as session:
            revoke_token(session, token_id, now=utcnow())
    except CostguardError as exc:
        fail(exc.message)
    print(f"revoked token {token_id}")


@app.command()
def review(
    days: int = typer.Option(7, "--days", min=1, help="review alerts that started in this many days"),
    format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """How many recent alerts held up: false-positive rate per alert against the 2% target."""
    from costguard.review.logic import CONFIRMED, FALSE_POSITIVE, OPEN, TARGET_FALSE_POSITIVE_RATE
    from costguard.review.service import review_alerts

    if format not in ("table", "json"):
        fail(f"--format {format!r} is not supported; use table or json")
    rt = _runtime("costguard-review")
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


@app.command()
def rules(
    budget_alerts: bool = typer.Option(
        False,
        "--budget-alerts",
        help="print instead the budget alerts as Prometheus rules (an alternative to costguard's own delivery)",
    ),
) -> None:
    """Print the Prometheus rule file: cost-rate recording rules, self-monitoring and anomaly alerts."""
    from costguard.alerts.rules import render

    print(render(_settings(), budget_alerts=budget_alerts), end="")


@app.command()
def demo(
    at: str | None = typer.Option(None, "--at", help="end of the generated month-to-date (default: now)"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Load a realistic generated month of usage across several tenants, pipelines and models."""
    from costguard.demo import load_demo

    rt = _runtime("costguard-demo")
    result = load_demo(rt.factory, rt.settings, until=_instant(at) or utcnow(), seed=seed)
    print(f"demo usage: accepted {result.accepted}, duplicates {result.duplicates}")


def main() -> None:
    try:
        app()
    except CostguardError as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(1)
