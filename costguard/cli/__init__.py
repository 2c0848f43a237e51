"""The ``costguard`` command. Thin: parses arguments, opens the runtime, calls services, prints.

Each group of commands has its module here; this one holds the process commands (serve, worker,
migrate, evaluate, status, rules, demo) and puts the groups together.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import typer
from rich.table import Table

from costguard.cli.budgets import budgets_app
from costguard.cli.common import err, fail, load_settings, open_or_fail, out, parse_instant, setup_logging
from costguard.cli.ingest import ingest
from costguard.cli.review import review
from costguard.cli.tokens import tokens_app
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError
from costguard.runtime import Runtime

app = typer.Typer(help="costguard: per-tenant cost budgets with Prometheus metrics and alerts.", no_args_is_help=True)
app.add_typer(budgets_app, name="budgets")
app.add_typer(tokens_app, name="tokens")
app.command()(ingest)
app.command()(review)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from costguard.schema import upgrade_to_head

    settings = load_settings()
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

    setup_logging()
    rt = open_or_fail("costguard-serve")
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

    setup_logging()
    rt = open_or_fail("costguard-worker")
    scheduler = blocking(rt.factory, rt.settings)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


@app.command()
def evaluate(
    at: str | None = typer.Option(None, "--at", help="evaluate as if the clock read this RFC 3339 instant"),
) -> None:
    """Run one full cycle: aggregate, evaluate, queue and send alerts."""
    from costguard.evaluation.jobs import run_evaluation_cycle

    rt = open_or_fail("costguard-evaluate")
    outcome = run_evaluation_cycle(rt.factory, rt.settings, at=parse_instant(at))
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
    rt = open_or_fail("costguard-status")
    if at is not None:
        run_evaluation_cycle(rt.factory, rt.settings, at=parse_instant(at))
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
def rules(
    budget_alerts: bool = typer.Option(
        False,
        "--budget-alerts",
        help="print instead the budget alerts as Prometheus rules (an alternative to costguard's own delivery)",
    ),
) -> None:
    """Print the Prometheus rule file: cost-rate recording rules, self-monitoring and anomaly alerts."""
    from costguard.alerts.rules import render

    print(render(load_settings(), budget_alerts=budget_alerts), end="")


@app.command()
def demo(
    at: str | None = typer.Option(None, "--at", help="end of the generated month-to-date (default: now)"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Load a realistic generated month of usage across several tenants, pipelines and models."""
    from costguard.demo import load_demo

    rt = open_or_fail("costguard-demo")
    result = load_demo(rt.factory, rt.settings, until=parse_instant(at) or utcnow(), seed=seed)
    print(f"demo usage: accepted {result.accepted}, duplicates {result.duplicates}")


def main() -> None:
    try:
        app()
    except CostguardError as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(1)
