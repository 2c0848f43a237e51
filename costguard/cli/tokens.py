"""``costguard tokens create|list|revoke``: API tokens and roles."""

from __future__ import annotations

import typer
from rich.table import Table

from costguard.cli.common import fail, open_or_fail, out
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError

tokens_app = typer.Typer(help="API tokens and roles.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    role: str = typer.Option(..., "--role", help="admin, finance, viewer or ingest"),
    tenant: str | None = typer.Option(None, "--tenant", help="bind the token to one tenant"),
    name: str | None = typer.Option(None, "--name", help="a name shown in the audit trail"),
) -> None:
    """Create a token; its secret is printed once, on the last line."""
    from costguard.auth.service import create_token

    rt = open_or_fail("costguard-tokens")
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

    rt = open_or_fail("costguard-tokens")
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

    rt = open_or_fail("costguard-tokens")
    try:
        with transaction(rt.factory) as session:
            revoke_token(session, token_id, now=utcnow())
    except CostguardError as exc:
        fail(exc.message)
    print(f"revoked token {token_id}")
